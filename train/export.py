"""Export a trained model: TorchScript of network + the OM's infer entrypoint (uint8 images in).

``export(model, path)`` writes ``torch.jit.save`` of a scripted wrapper whose
``forward(image uint8 [N, 3, H, W])`` returns the infer outputs
(``panoptic_pred``, ...). Load with ``torch.jit.load(path)``; no omgen,
runtime or train import is needed there. A deployment issue will extend this
(torch.export, ONNX, fixed shapes).
"""
from __future__ import annotations

from pathlib import Path

from runtime.export import export_torchscript, scripted_inference
from runtime.model import OMModel

__all__ = ["export", "scripted_inference"]


def export(model: OMModel, path: str | Path) -> Path:
    model = model.eval()
    return export_torchscript(model, path)
