"""TorchScript export of network + the OM's ``infer`` entrypoint as one module.

The wrapper's ``forward(x)`` runs the network, picks the OM's prediction
inputs from its output dict by name (through the model's ``outputs`` map) and
returns the ``infer`` outputs. Its source is written for the OM at hand (the
infer signature differs between OMs) and registered with ``linecache`` so
``torch.jit.script`` can read it.
"""
from __future__ import annotations

import linecache
from pathlib import Path
from typing import Dict

import torch

from .checkpoint import save_atomic, unwrap  # noqa: F401  (unwrap re-exported)
from .model import OMModel

_counter = [0]


def _wrapper_class(call_args: str):
    _counter[0] += 1
    filename = f"<omgen-export-{_counter[0]}>"
    source = (
        "import torch\n"
        "from typing import Dict\n"
        "from torch import Tensor\n\n\n"
        "class Exported(torch.nn.Module):\n"
        "    def __init__(self, network: torch.nn.Module, infer: torch.nn.Module) -> None:\n"
        "        super().__init__()\n"
        "        self.network = network\n"
        "        self.infer = infer\n\n"
        "    def forward(self, x: Tensor) -> Dict[str, Tensor]:\n"
        "        out = self.network(x)\n"
        f"        return self.infer({call_args})\n"
    )
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: Dict[str, object] = {"__name__": f"omgen_export_{_counter[0]}"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["Exported"]


def scripted_inference(model: OMModel) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of network + infer (eval mode, CPU copies untouched)."""
    names = model.om.signature("infer")
    args = ", ".join(f'out["{model.output_map.get(n, n)}"].float()' for n in names)
    cls = _wrapper_class(args)
    wrapper = cls(unwrap(model.network), _fresh_infer(model)).eval()
    return torch.jit.script(wrapper)


def _fresh_infer(model: OMModel) -> torch.nn.Module:
    """The infer entrypoint rebuilt from the module as it is on disk now.

    TorchScript reads the source file again; if generated/ was recompiled since
    the module was imported, the old class objects no longer match that file.
    """
    import importlib

    module = model.om.module
    try:
        module = importlib.reload(module)
    except Exception:  # noqa: BLE001 - keep the loaded one
        return model.infer_entry
    return module.ENTRYPOINTS["infer"](**model.om_config)


def export_torchscript(model: OMModel, path: str | Path) -> Path:
    scripted = scripted_inference(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.jit.save(scripted, str(tmp))
    tmp.replace(path)
    return path
