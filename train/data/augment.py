"""Joint augmentation of an image and its panoptic id map (opencv + numpy).

Arrays: image ``[H, W, 3]`` uint8, panoptic ``[H, W]`` int64 (omgen ids).
The image is resampled bilinearly, the panoptic map by nearest neighbour with
the same half-pixel-centre geometry, so no id is ever invented: every output
id is an input id or ``void_id`` (padding). :class:`PanopticAugment` chains
random scale → pad (bottom/right) → random crop → random horizontal flip and
is deterministic given a ``numpy.random.Generator`` or ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import cv2
import numpy as np
import torch

from train.data.panoptic import IGNORE_LABEL, LABEL_DIVISOR

Rng = Union[np.random.Generator, torch.Generator]
PadValue = Union[float, tuple[float, float, float], str]


def _uniform(rng: Rng, lo: float, hi: float) -> float:
    if isinstance(rng, torch.Generator):
        u = float(torch.rand((), generator=rng, dtype=torch.float64))
    else:
        u = float(rng.random())
    return lo + (hi - lo) * u


def _randint(rng: Rng, n: int) -> int:
    """Uniform in ``[0, n)``."""
    if isinstance(rng, torch.Generator):
        return int(torch.randint(n, (), generator=rng))
    return int(rng.integers(n))


def _check(image: np.ndarray, panoptic: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got {image.shape}")
    if panoptic.shape != image.shape[:2]:
        raise ValueError(f"panoptic must be [H, W] = {image.shape[:2]}, got {panoptic.shape}")


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    # Source pixel whose centre is nearest to each output centre:
    # floor((i + 0.5) * n_in / n_out), in exact integer arithmetic.
    idx = ((2 * np.arange(n_out, dtype=np.int64) + 1) * n_in) // (2 * n_out)
    return np.minimum(idx, n_in - 1)


def rescale(image: np.ndarray, panoptic: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize both by ``scale`` (size rounded, at least 1 pixel)."""
    _check(image, panoptic)
    h, w = panoptic.shape
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) == (h, w):
        return image, panoptic
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    pan = panoptic[_nearest_index(h, nh)[:, None], _nearest_index(w, nw)[None, :]]
    return img, pan


def _pad_color(image: np.ndarray, value: PadValue) -> tuple[float, float, float]:
    if isinstance(value, str):
        if value != "mean":
            raise ValueError(f"image pad value must be a number, an RGB triple or 'mean', got {value!r}")
        m = image.reshape(-1, 3).mean(0) if image.size else np.zeros(3)
        return tuple(float(round(v)) for v in m)  # type: ignore[return-value]
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def pad_to(
    image: np.ndarray,
    panoptic: np.ndarray,
    min_size: tuple[int, int],
    *,
    void_id: int = IGNORE_LABEL * LABEL_DIVISOR,
    image_pad: PadValue = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad bottom/right to at least ``min_size`` (h, w): image with
    ``image_pad`` (a number, an RGB triple or ``'mean'`` of this image),
    panoptic with ``void_id``."""
    _check(image, panoptic)
    h, w = panoptic.shape
    ph, pw = max(0, min_size[0] - h), max(0, min_size[1] - w)
    if ph == 0 and pw == 0:
        return image, panoptic
    color = _pad_color(image, image_pad)
    img = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=color)
    pan = np.full((h + ph, w + pw), void_id, dtype=panoptic.dtype)
    pan[:h, :w] = panoptic
    return img, pan


def random_crop(
    image: np.ndarray, panoptic: np.ndarray, size: tuple[int, int], rng: Rng
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a uniformly placed ``size`` (h, w) window; the arrays must be at least that big."""
    _check(image, panoptic)
    h, w = panoptic.shape
    ch, cw = size
    if h < ch or w < cw:
        raise ValueError(f"random_crop: {h}x{w} is smaller than the crop {ch}x{cw}; pad first")
    y = _randint(rng, h - ch + 1)
    x = _randint(rng, w - cw + 1)
    return image[y : y + ch, x : x + cw], panoptic[y : y + ch, x : x + cw]


def hflip(image: np.ndarray, panoptic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror both left-right."""
    _check(image, panoptic)
    return image[:, ::-1], panoptic[:, ::-1]


@dataclass
class PanopticAugment:
    """Random scale in ``scale_range`` → pad → random crop to ``crop_size`` →
    horizontal flip with probability ``flip_prob``.

    ``crop_size=None`` skips pad and crop (sizes then vary; collate with
    ``void_id``). ``void_id`` must be the dataset's
    ``ignore_label * label_divisor`` (``dataset.void_id``). Draw order per
    call: scale, crop y, crop x, flip — fixed, so a generator state gives one
    result.
    """

    crop_size: tuple[int, int] | None = None
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip_prob: float = 0.5
    void_id: int = IGNORE_LABEL * LABEL_DIVISOR
    image_pad: PadValue = 0

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        if self.crop_size is not None:
            self.crop_size = (int(self.crop_size[0]), int(self.crop_size[1]))
            if min(self.crop_size) < 1:
                raise ValueError(f"crop_size must be positive, got {self.crop_size}")

    def __call__(self, image: np.ndarray, panoptic: np.ndarray, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
        _check(image, panoptic)
        lo, hi = self.scale_range
        scale = _uniform(rng, lo, hi)
        image, panoptic = rescale(image, panoptic, scale)
        if self.crop_size is not None:
            image, panoptic = pad_to(image, panoptic, self.crop_size, void_id=self.void_id, image_pad=self.image_pad)
            image, panoptic = random_crop(image, panoptic, self.crop_size, rng)
        if _uniform(rng, 0.0, 1.0) < self.flip_prob:
            image, panoptic = hflip(image, panoptic)
        return np.ascontiguousarray(image), np.ascontiguousarray(panoptic)
