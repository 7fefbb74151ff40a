"""Box detection datasets: a view of the panoptic datasets, and a COCO instances loader.

A detection sample is a dict:

* ``image`` uint8 ``[3, H, W]``;
* ``boxes`` float32 ``[K, 4]``: (x1, y1, x2, y2) in pixels, continuous
  coordinates (a mask covering pixel columns 3..7 gives x1 = 3, x2 = 8; COCO's
  ``bbox`` [x, y, w, h] is (x1, y1, x2 - x1, y2 - y1));
* ``classes`` int64 ``[K]``: contiguous detection class ids 0..C-1 (the thing
  classes, in train-id order);
* ``iscrowd`` bool ``[K]``: crowd regions, kept for evaluation (COCO ignores
  detections on them) and left out of the training targets;
* ``area`` float32 ``[K]``: the mask area in pixels where known (COCO's size ranges);
* ``image_id``, ``index``.

:func:`collate_detection` pads the objects of a batch to one M: ``boxes``
``[N, M, 4]`` and ``classes`` ``[N, M]`` with class -1 on padding and on crowd
boxes (the OM's truth inputs), plus the ground truth with crowd flags for
evaluation in ``gt`` (one dict per image).

:class:`PanopticDetection` turns any :class:`train.data.panoptic.PanopticDataset`
(COCO panoptic, Cityscapes, the synthetic shapes) into detection samples: a box
per thing instance from its (augmented) mask, and one crowd box per thing class
from its crowd pixels (crowd segments of one class share one id in omgen's
panoptic maps, so two crowd segments of one class give their union's box).
:class:`CocoDetection` reads COCO ``instances_*.json`` (``bbox`` per annotation).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from train.data.panoptic import DatasetError, PanopticDataset, read_image, read_json

__all__ = ["PanopticDetection", "CocoDetection", "DetectionAugment", "collate_detection", "boxes_from_panoptic"]


def boxes_from_panoptic(pan: np.ndarray, thing_train_ids: Sequence[int], label_divisor: int
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Panoptic ids ``[H, W]`` -> (boxes [K,4] float32, classes [K] int64, iscrowd [K] bool, area [K] float32).

    One box per thing instance id (``t * divisor + i``, i >= 1) and per thing
    class with crowd pixels (``t * divisor``); classes are positions in
    ``thing_train_ids``; order: by panoptic id.
    """
    pan = np.asarray(pan).reshape(pan.shape[-2], pan.shape[-1])
    things = {int(t): k for k, t in enumerate(thing_train_ids)}
    h, w = pan.shape
    uniq, inv = np.unique(pan, return_inverse=True)
    inv = inv.reshape(h, w)
    cls = uniq // label_divisor
    sel = np.array([int(c) in things for c in cls], bool) if len(uniq) else np.zeros(0, bool)
    idx = np.nonzero(sel)[0]
    if len(idx) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.float32)
    # per segment min / max row and column from per-row / per-column presence (no loop over pixels)
    lut = np.full(len(uniq), -1, np.int64)
    lut[idx] = np.arange(len(idx))
    seg = lut[inv]                                            # [H, W] segment slot or -1
    k = len(idx)
    rows = np.zeros((k, h), bool)
    cols = np.zeros((k, w), bool)
    ys, xs = np.nonzero(seg >= 0)
    s = seg[ys, xs]
    rows[s, ys] = True
    cols[s, xs] = True
    area = np.bincount(s, minlength=k).astype(np.float32)
    y1 = rows.argmax(1)
    y2 = h - rows[:, ::-1].argmax(1)
    x1 = cols.argmax(1)
    x2 = w - cols[:, ::-1].argmax(1)
    boxes = np.stack([x1, y1, x2, y2], 1).astype(np.float32)
    classes = np.array([things[int(c)] for c in cls[idx]], np.int64)
    crowd = (uniq[idx] % label_divisor) == 0
    return boxes, classes, crowd, area


class PanopticDetection(torch.utils.data.Dataset):
    """Detection samples (boxes from the instance masks) of a panoptic dataset and its transform."""

    def __init__(self, panoptic: PanopticDataset) -> None:
        self.panoptic = panoptic

    @property
    def num_classes(self) -> int:
        return len(self.panoptic.thing_train_ids)

    @property
    def class_names(self) -> Tuple[str, ...]:
        names = self.panoptic.class_names
        return tuple(names[t] for t in self.panoptic.thing_train_ids)

    def set_epoch(self, epoch: int) -> None:
        self.panoptic.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.panoptic)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        s = self.panoptic[index]
        boxes, classes, crowd, area = boxes_from_panoptic(s["panoptic"].numpy()[0], self.panoptic.thing_train_ids,
                                                          self.panoptic.label_divisor)
        return {"image": s["image"], "boxes": torch.from_numpy(boxes), "classes": torch.from_numpy(classes),
                "iscrowd": torch.from_numpy(crowd), "area": torch.from_numpy(area), "image_id": s["image_id"],
                "index": index}


class DetectionAugment:
    """Random scale, crop / pad to ``size`` (H, W) and horizontal flip of an image and its boxes.

    Boxes are scaled, shifted, clipped to the crop and dropped when less than
    ``min_size`` pixels wide or high remain. Without ``size`` the scaled image
    is kept whole. The generator makes it a function of (seed, epoch, index).
    """

    def __init__(self, size: Optional[Sequence[int]] = None, scale_range: Sequence[float] = (0.6, 1.4),
                 flip_prob: float = 0.5, min_size: float = 1.0, pad_value: int = 0) -> None:
        self.size = tuple(int(v) for v in size) if size else None
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip_prob = float(flip_prob)
        self.min_size = float(min_size)
        self.pad_value = int(pad_value)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, keep_idx: np.ndarray, rng: np.random.Generator
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        lo, hi = self.scale_range
        s = float(rng.uniform(lo, hi)) if hi > lo else lo
        if self.size is not None:
            s *= min(self.size[0] / h, self.size[1] / w)
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        if (nh, nw) != (h, w):
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        b = boxes.astype(np.float32) * np.float32([nw / w, nh / h, nw / w, nh / h])
        if self.size is not None:
            th, tw = self.size
            y0 = int(rng.integers(0, nh - th + 1)) if nh > th else 0
            x0 = int(rng.integers(0, nw - tw + 1)) if nw > tw else 0
            out = np.full((th, tw, 3), self.pad_value, np.uint8)
            crop = image[y0:y0 + th, x0:x0 + tw]
            out[:crop.shape[0], :crop.shape[1]] = crop
            image = out
            b = b - np.float32([x0, y0, x0, y0])
            b = np.clip(b, 0, np.float32([tw, th, tw, th]))
        if rng.random() < self.flip_prob:
            image = np.ascontiguousarray(image[:, ::-1])
            W = image.shape[1]
            b = np.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], 1) if len(b) else b
        ok = ((b[:, 2] - b[:, 0]) >= self.min_size) & ((b[:, 3] - b[:, 1]) >= self.min_size) if len(b) else \
            np.zeros(0, bool)
        return image, b[ok].astype(np.float32), keep_idx[ok]


class CocoDetection(torch.utils.data.Dataset):
    """COCO instances JSON (``images``, ``annotations`` with ``bbox`` [x, y, w, h], ``categories``).

    Category ids map to 0..C-1 in the order of ``categories``; ``iscrowd``
    annotations are kept with the flag; annotations with a non-positive box
    are dropped. ``transform``: a :class:`DetectionAugment`.
    """

    def __init__(self, image_dir: Path | str, json_path: Path | str, *, transform: Optional[DetectionAugment] = None,
                 seed: int = 0, skip_empty: bool = False) -> None:
        self.json_path = Path(json_path)
        self.image_dir = Path(image_dir)
        data = read_json_instances(self.json_path)
        cats = data["categories"]
        self.category_ids = [int(c["id"]) for c in cats]
        self._names = tuple(str(c.get("name", c["id"])) for c in cats)
        to_class = {cid: k for k, cid in enumerate(self.category_ids)}
        per_image: Dict[Any, List[Mapping[str, Any]]] = {}
        for k, a in enumerate(data["annotations"]):
            if not isinstance(a, dict) or not {"image_id", "bbox", "category_id"} <= a.keys():
                raise DatasetError(f"{self.json_path}: annotations[{k}] needs 'image_id', 'bbox' and 'category_id'")
            if a["category_id"] not in to_class:
                raise DatasetError(f"{self.json_path}: annotations[{k}]: category_id {a['category_id']!r} is not in "
                                   "'categories'")
            per_image.setdefault(a["image_id"], []).append(a)
        self.records: List[Dict[str, Any]] = []
        for k, im in enumerate(data["images"]):
            if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
                raise DatasetError(f"{self.json_path}: images[{k}] needs 'id' and 'file_name'")
            anns = per_image.get(im["id"], [])
            boxes, classes, crowd, area = [], [], [], []
            for a in anns:
                x, y, bw, bh = (float(v) for v in a["bbox"])
                if not (bw > 0 and bh > 0):
                    continue
                boxes.append([x, y, x + bw, y + bh])
                classes.append(to_class[a["category_id"]])
                crowd.append(bool(a.get("iscrowd", 0)))
                area.append(float(a.get("area", bw * bh)))
            if skip_empty and not any(not c for c in crowd):
                continue
            self.records.append({"image_id": im["id"], "path": self.image_dir / str(im["file_name"]),
                                 "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                                 "classes": np.asarray(classes, np.int64), "iscrowd": np.asarray(crowd, bool),
                                 "area": np.asarray(area, np.float32)})
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_root(cls, root: Path | str, split: str, **kwargs) -> "CocoDetection":
        """COCO layout: ``root/{split}/`` images, ``root/annotations/instances_{split}.json``."""
        root = Path(root)
        return cls(root / split, root / "annotations" / f"instances_{split}.json", **kwargs)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    @property
    def class_names(self) -> Tuple[str, ...]:
        return self._names

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not 0 <= index < len(self.records):
            raise IndexError(index)
        r = self.records[index]
        image = read_image(r["path"])
        boxes, keep = r["boxes"], np.arange(len(r["boxes"]))
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, boxes, keep = self.transform(image, boxes, keep, rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                "boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
                "classes": torch.from_numpy(r["classes"][keep]), "iscrowd": torch.from_numpy(r["iscrowd"][keep]),
                "area": torch.from_numpy(r["area"][keep] if self.transform is None else
                                         ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(np.float32)),
                "image_id": r["image_id"], "index": index}


def read_json_instances(path: Path) -> dict:
    """A COCO instances JSON; a missing file or key is a one-line :class:`DatasetError`."""
    data = read_json(path)  # checks images / annotations / categories are lists
    return data


def collate_detection(samples: Sequence[Mapping[str, Any]], *, max_objects: Optional[int] = None,
                      multiple: int = 32) -> Dict[str, Any]:
    """Samples -> ``image`` uint8 [N,3,H,W] (padded bottom / right to a multiple of ``multiple``),
    ``boxes`` [N,M,4], ``classes`` [N,M] (-1: padding and crowd), ``gt`` (per image: boxes, classes,
    iscrowd, area, all objects), ``image_id``, ``index``.

    M is the largest number of non-crowd objects in the batch (at least 1), or
    ``max_objects`` (a fixed M; images with more keep their first M).
    """
    if not samples:
        raise ValueError("collate_detection: empty batch")
    h = max(int(s["image"].shape[-2]) for s in samples)
    w = max(int(s["image"].shape[-1]) for s in samples)
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    n = len(samples)
    images = torch.zeros((n, 3, H, W), dtype=torch.uint8)
    objects = [(~s["iscrowd"]).nonzero().reshape(-1) for s in samples]
    m = max(1, max(len(o) for o in objects)) if max_objects is None else int(max_objects)
    boxes = torch.zeros((n, m, 4), dtype=torch.float32)
    classes = torch.full((n, m), -1, dtype=torch.int64)
    gt = []
    for i, s in enumerate(samples):
        sh, sw = s["image"].shape[-2:]
        images[i, :, :sh, :sw] = s["image"]
        o = objects[i][:m]
        boxes[i, :len(o)] = s["boxes"][o]
        classes[i, :len(o)] = s["classes"][o]
        gt.append({"boxes": s["boxes"], "classes": s["classes"], "iscrowd": s["iscrowd"],
                   "area": s.get("area"), "size": (int(sh), int(sw))})
    return {"image": images, "boxes": boxes, "classes": classes, "gt": gt,
            "image_id": [s.get("image_id") for s in samples],
            "index": torch.tensor([int(s.get("index", -1)) for s in samples], dtype=torch.int64)}
