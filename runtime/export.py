"""TorchScript export of network + the OM's ``infer`` entrypoint as one module.

``NetworkWithDecoding.forward(x)`` runs the network and hands its outputs to
the generated entrypoint's ``forward_dict`` by name (``names``: OM input name
-> network output name), so one fixed class serves every OM.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch
from torch import Tensor

from .checkpoint import unwrap
from .model import OMModel


class NetworkWithDecoding(torch.nn.Module):
    def __init__(self, network: torch.nn.Module, infer: torch.nn.Module, names: Dict[str, str]) -> None:
        super().__init__()
        self.network = network
        self.infer = infer
        self.names = names

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = self.network(x)
        inputs: Dict[str, Tensor] = {}
        for om_name, network_name in self.names.items():
            inputs[om_name] = out[network_name].float()
        return self.infer.forward_dict(inputs)


def scripted_inference(model: OMModel) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of network + infer (eval mode, CPU copies untouched)."""
    names = {n: model.output_map.get(n, n) for n in model.om.signature("infer") if n in model.om.prediction_inputs}
    wrapper = NetworkWithDecoding(unwrap(model.network), _fresh_infer(model), names).eval()
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
