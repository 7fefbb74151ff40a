"""A tiny Cityscapes download in the raw format (what gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip
unpack to), for the conversion and official-evaluation tests.

``gtFine/{split}/{city}/{frame}_gtFine_instanceIds.png`` is a 16-bit grey PNG
of Cityscapes' instance ids: a stuff pixel holds its label id (road 7, sky 23,
...), a thing instance ``label_id * 1000 + k``, a crowd ("group") region of a
thing class its bare label id (car 26), and labels not evaluated keep their id
too (static 4, caravan instance 29001) so that the converter must drop them.
``leftImg8bit`` holds a matching RGB image (label colours plus noise).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

# label id -> (train id or None for not evaluated, is thing), for the labels the scenes use
LABELS: Dict[int, Tuple[int | None, bool]] = {
    4: (None, False), 7: (0, False), 8: (1, False), 11: (2, False), 21: (8, False), 23: (10, False),
    24: (11, True), 26: (13, True), 29: (None, True), 33: (18, True),
}
COLORS = {4: (0, 0, 0), 7: (128, 64, 128), 8: (244, 35, 232), 11: (70, 70, 70), 21: (107, 142, 35),
          23: (70, 130, 180), 24: (220, 20, 60), 26: (0, 0, 142), 29: (0, 0, 90), 33: (119, 11, 32)}
CITIES = ("aachen", "bremen")


def scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """One instanceIds map [h, w] (uint16)."""
    ids = np.zeros((h, w), np.uint16)  # 0: unlabeled
    ids[: h // 3] = 23
    ids[h // 3: h // 2] = 11
    ids[h // 2:] = 7
    ids[h - h // 6:, : w // 3] = 8
    ids[h // 3: h // 2, w - w // 5:] = 21
    ids[h // 2: h // 2 + h // 10, : w // 8] = 4  # static: not evaluated -> void
    k_of = {24: 0, 26: 0, 33: 0, 29: 0}
    for _ in range(int(rng.integers(3, 7))):
        label = int(rng.choice([24, 26, 26, 33, 29]))
        y0, x0 = int(rng.integers(h // 3, h - 6)), int(rng.integers(0, w - 8))
        y1, x1 = min(h, y0 + int(rng.integers(4, h // 3))), min(w, x0 + int(rng.integers(5, w // 3)))
        k_of[label] += 1
        ids[y0:y1, x0:x1] = label * 1000 + k_of[label]
    if rng.random() < 0.7:  # a car group: crowd
        y0, x0 = int(rng.integers(h // 2, h - 4)), int(rng.integers(0, w - 6))
        ids[y0:y0 + 4, x0:x0 + 6] = 26
    ids[0, 0] = 0  # an unlabeled pixel
    return ids


def image_of(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    labels = np.where(ids >= 1000, ids // 1000, ids)
    rgb = np.zeros(ids.shape + (3,), np.int16)
    for label, color in COLORS.items():
        rgb[labels == label] = color
    rgb += rng.integers(-20, 21, rgb.shape).astype(np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_raw_cityscapes(root: Path, splits: Dict[str, int] | None = None, size: Tuple[int, int] = (64, 128),
                         seed: int = 0, sizes: Dict[str, Tuple[int, int]] | None = None) -> Dict[str, List[Path]]:
    """Write ``splits`` ({split: number of frames}) under ``root``; returns the instanceIds files per split."""
    splits = splits or {"train": 4, "val": 3}
    rng = np.random.default_rng(seed)
    written: Dict[str, List[Path]] = {}
    for split, n in splits.items():
        h, w = (sizes or {}).get(split, size)
        written[split] = []
        for i in range(n):
            city = CITIES[i % len(CITIES)]
            frame = f"{city}_{i:06d}_000019"
            ids = scene(rng, h, w)
            gt = root / "gtFine" / split / city / f"{frame}_gtFine_instanceIds.png"
            img = root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png"
            gt.parent.mkdir(parents=True, exist_ok=True)
            img.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(gt), ids)
            assert cv2.imwrite(str(img), image_of(rng, ids)[:, :, ::-1])
            written[split].append(gt)
    return written


def expected_panoptic(ids: np.ndarray, divisor: int = 1000, ignore: int = 255) -> np.ndarray:
    """omgen's panoptic ids of an instanceIds map, from the rules of docs/datasets.md (written from the
    Cityscapes format, not from the converter): void for 0 and labels not evaluated, ``train id * divisor``
    for stuff and crowd, instances of a class numbered 1, 2, ... in increasing instance id."""
    out = np.full(ids.shape, ignore * divisor, np.int64)
    for value in np.unique(ids):
        label = int(value) // 1000 if value >= 1000 else int(value)
        train_id, thing = LABELS.get(label, (None, False))
        if train_id is None:
            continue
        out[ids == value] = train_id * divisor
    for label, (train_id, thing) in LABELS.items():
        if train_id is None or not thing:
            continue
        instances = sorted(int(v) for v in np.unique(ids) if v >= 1000 and v // 1000 == label)
        for k, value in enumerate(instances, 1):
            out[ids == value] = train_id * divisor + k
    return out
