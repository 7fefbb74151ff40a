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


MAX_PIXELS = 4 * 1024 * 1024  # batch x height x width, as train/deploy.py's default


class NetworkWithDecoding(torch.nn.Module):
    """Network + generated infer; a batch that is not [N, C, H, W] or has more than ``max_pixels`` pixels is one
    ValueError before the network allocates anything."""

    def __init__(self, network: torch.nn.Module, infer: torch.nn.Module, names: Dict[str, str],
                 max_pixels: int = MAX_PIXELS) -> None:
        super().__init__()
        self.network = network
        self.infer = infer
        self.names = names
        self.max_pixels = int(max_pixels)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        if x.dim() != 4:
            raise ValueError("image: expected a batch [N, C, H, W], got rank " + str(x.dim()))
        if x.shape[0] * x.shape[2] * x.shape[3] > self.max_pixels:
            raise ValueError("image: " + str(x.shape[0] * x.shape[2] * x.shape[3]) + " pixels (batch x height x "
                             + "width), over this program's limit of " + str(self.max_pixels))
        out: Dict[str, Tensor] = self.network(x)
        inputs: Dict[str, Tensor] = {}
        for om_name, network_name in self.names.items():
            inputs[om_name] = out[network_name].float()
        return self.infer.forward_dict(inputs)


def scripted_inference(model: OMModel, max_pixels: int = MAX_PIXELS) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of network + infer (eval mode, CPU copies untouched)."""
    names = {n: model.output_map.get(n, n) for n in model.om.signature("infer") if n in model.om.prediction_inputs}
    wrapper = NetworkWithDecoding(unwrap(model.network), _fresh_infer(model), names, max_pixels).eval()
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
