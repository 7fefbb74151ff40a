"""A tiny OM-agnostic training setup on the toy_peaks OM (no BatchNorm, no dropout: exact comparisons)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from runtime.model import OMModel
from runtime.om import load_om
from runtime.trainer import Trainer, TrainSettings


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n: int = 32, size: int = 12, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 2, size, size, generator=g)
        # truth: a smooth function of the image, so the loss can go down
        self.points = torch.sigmoid(self.images[:, :1] * 2.0 - self.images[:, 1:] * 0.5)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Dict[str, Tensor]:
        return {"image": self.images[i], "points": self.points[i]}


def collate(samples):
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


class ToyNet(nn.Module):
    def __init__(self, nan_after: Optional[int] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 1, 3, padding=1)
        self.nan_after = -1 if nan_after is None else int(nan_after)
        self.calls = 0

    def forward(self, image: Tensor) -> Dict[str, Tensor]:
        self.calls += 1
        out = self.conv2(torch.relu(self.conv1(image)))
        if self.nan_after >= 0 and self.calls > self.nan_after:
            out = out * float("nan")
        return {"heat": out}


def toy_model(nan_after: Optional[int] = None, seed: int = 0) -> OMModel:
    torch.manual_seed(seed)
    om = load_om("toy_peaks", "base")
    return OMModel(ToyNet(nan_after), om, outputs={"heat_logits": "heat"})


def toy_trainer(out_dir, steps: int = 6, batch: int = 8, *, ckpt_every: int = 0, nan_after: Optional[int] = None,
                on_step=None, dist=None, lr: float = 0.05, seed: int = 0,
                time_budget_s: Optional[float] = None) -> Trainer:
    settings = TrainSettings(steps=steps, batch_size=batch, lr=lr, optimizer="sgd", schedule="poly",
                             log_every=1, ckpt_every=ckpt_every, out_dir=str(out_dir), seed=seed,
                             progress=False, tensorboard=False, device="cpu",
                             time_budget_s=time_budget_s)
    return Trainer(toy_model(nan_after, seed), ToyData(), collate, settings, on_step=on_step, dist=dist)
