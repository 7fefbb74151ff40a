"""COCO person keypoints: the ``person_keypoints_*.json`` loader, its augmentation (flip with the joint pairs)
and the batch collate of the pose task.

A sample is a dict:

* ``image`` uint8 ``[3, H, W]``;
* ``boxes`` float32 ``[K, 4]`` (x1, y1, x2, y2) in pixels (COCO ``bbox`` is [x, y, w, h]);
* ``keypoints`` float32 ``[K, 17, 3]``: (x, y, v) in pixels, v = 0 unlabelled (COCO writes (0, 0, 0)),
  1 labelled but hidden, 2 visible;
* ``iscrowd`` bool ``[K]``, ``area`` float32 ``[K]`` (the segmentation area: OKS scale), ``image_id``, ``index``.

:func:`collate_pose` pads a batch: ``boxes`` [N, M, 4], ``classes`` [N, M] (0 person; -1 padding and crowd:
crowd regions are left out of the training targets and kept for the evaluation, where COCOeval ignores
detections on them), ``keypoints`` [N, M, 17, 3], ``image`` padded bottom / right to a multiple of 32.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from train.data.panoptic import DatasetError, read_image

__all__ = ["COCO_JOINTS", "COCO_SKELETON", "FLIP_PAIRS", "CocoKeypoints", "PoseAugment", "collate_pose",
           "flip_keypoints", "read_keypoints_json"]

COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle")
# COCO's skeleton (person_keypoints_*.json "skeleton", 1-based there), 0-based joint pairs
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))  # left <-> right
MAX_JSON_BYTES = 1 << 30


def read_keypoints_json(path: Path | str) -> dict:
    """A COCO person-keypoints JSON, checked: a regular file below 1 GiB, ``images`` / ``annotations`` /
    ``categories`` lists, a category with 17 ``keypoints``; any problem is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: person keypoints JSON not found")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DatasetError(f"{path}: larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object with 'images', 'annotations', 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: missing or non-list key '{key}'")
    people = [c for c in data["categories"] if isinstance(c, dict) and len(c.get("keypoints", ())) == len(COCO_JOINTS)]
    if not people:
        raise DatasetError(f"{path}: no category with the 17 COCO 'keypoints' (a person_keypoints_*.json?)")
    return data


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirror [K, 17, 3] keypoints in an image ``width`` pixels wide (continuous coordinates: x -> width - x) and swap
    each left joint with its right one. Unlabelled joints stay (0, 0, 0)."""
    out = keypoints.copy()
    labelled = out[:, :, 2] > 0
    out[:, :, 0] = np.where(labelled, width - out[:, :, 0], 0.0)
    for a, b in FLIP_PAIRS:
        out[:, [a, b]] = out[:, [b, a]]
    return out


class PoseAugment:
    """Random scale, crop / pad to ``size`` (h, w) and horizontal flip with the joint pairs, for training.

    Joints that leave the crop become unlabelled (0, 0, 0); boxes are clipped to the crop and people whose box
    vanishes are dropped.
    """

    def __init__(self, size: Optional[Tuple[int, int]] = None, scale_range: Tuple[float, float] = (0.6, 1.4),
                 flip_prob: float = 0.5) -> None:
        self.size = tuple(size) if size else None
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip_prob = float(flip_prob)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator):
        h, w = image.shape[:2]
        scale = float(rng.uniform(*self.scale_range))
        out_h, out_w = self.size or (h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        sy, sx = nh / h, nw / w
        y0 = int(rng.integers(0, nh - out_h + 1)) if nh > out_h else -int(rng.integers(0, out_h - nh + 1))
        x0 = int(rng.integers(0, nw - out_w + 1)) if nw > out_w else -int(rng.integers(0, out_w - nw + 1))
        canvas = np.zeros((out_h, out_w, 3), np.uint8)
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(nh, y0 + out_h), min(nw, x0 + out_w)
        canvas[ys - y0:ye - y0, xs - x0:xe - x0] = image[ys:ye, xs:xe]
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32) - np.array([x0, y0, x0, y0], np.float32)
        boxes = np.clip(boxes, 0, np.array([out_w, out_h, out_w, out_h], np.float32))
        kps = keypoints.copy()
        kps[:, :, 0] = kps[:, :, 0] * sx - x0
        kps[:, :, 1] = kps[:, :, 1] * sy - y0
        inside = (kps[:, :, 0] >= 0) & (kps[:, :, 0] < out_w) & (kps[:, :, 1] >= 0) & (kps[:, :, 1] < out_h)
        kps[~(inside & (keypoints[:, :, 2] > 0))] = 0.0
        if rng.random() < self.flip_prob:
            canvas = np.ascontiguousarray(canvas[:, ::-1])
            boxes = np.stack([out_w - boxes[:, 2], boxes[:, 1], out_w - boxes[:, 0], boxes[:, 3]], 1)
            kps = flip_keypoints(kps, out_w)
        keep = np.nonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))[0]
        return canvas, boxes[keep], kps[keep], keep


class CocoKeypoints(torch.utils.data.Dataset):
    """COCO ``person_keypoints_{split}.json`` + images: the person category's annotations (``bbox``, ``keypoints``
    as 51 numbers, ``iscrowd``, ``area``). ``skip_empty``: leave out images without a labelled person (training)."""

    def __init__(self, image_dir: Path | str, json_path: Path | str, *, transform: Optional[PoseAugment] = None,
                 seed: int = 0, skip_empty: bool = False) -> None:
        self.json_path = Path(json_path)
        self.image_dir = Path(image_dir)
        data = read_keypoints_json(self.json_path)
        person = next(c for c in data["categories"] if len(c.get("keypoints", ())) == len(COCO_JOINTS))
        self.category_id = person.get("id", 1)
        self.joint_names = tuple(str(n) for n in person["keypoints"])
        per_image: Dict[Any, List[Mapping[str, Any]]] = {}
        for k, a in enumerate(data["annotations"]):
            if not isinstance(a, dict) or not {"image_id", "bbox"} <= a.keys():
                raise DatasetError(f"{self.json_path}: annotations[{k}] needs 'image_id' and 'bbox'")
            if a.get("category_id", self.category_id) != self.category_id:
                continue
            kp = a.get("keypoints", [0] * 51)
            if not isinstance(kp, list) or len(kp) != 51:
                raise DatasetError(f"{self.json_path}: annotations[{k}]: 'keypoints' must hold 17 x 3 numbers")
            per_image.setdefault(a["image_id"], []).append(a)
        self.records: List[Dict[str, Any]] = []
        for k, im in enumerate(data["images"]):
            if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
                raise DatasetError(f"{self.json_path}: images[{k}] needs 'id' and 'file_name'")
            boxes, kps, crowd, area = [], [], [], []
            for a in per_image.get(im["id"], []):
                x, y, bw, bh = (float(v) for v in a["bbox"])
                if not (bw > 0 and bh > 0):
                    continue
                boxes.append([x, y, x + bw, y + bh])
                kps.append(np.asarray(a.get("keypoints", [0] * 51), np.float32).reshape(17, 3))
                crowd.append(bool(a.get("iscrowd", 0)))
                area.append(float(a.get("area", bw * bh)))
            labelled = [c is False and bool((p[:, 2] > 0).any()) for c, p in zip(crowd, kps)]
            if skip_empty and not any(labelled):
                continue
            self.records.append({"image_id": im["id"], "path": self.image_dir / str(im["file_name"]),
                                 "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                                 "keypoints": np.asarray(kps, np.float32).reshape(-1, 17, 3),
                                 "iscrowd": np.asarray(crowd, bool), "area": np.asarray(area, np.float32)})
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_root(cls, root: Path | str, split: str, **kwargs) -> "CocoKeypoints":
        """COCO layout: ``root/{split}/`` images, ``root/annotations/person_keypoints_{split}.json``."""
        root = Path(root)
        return cls(root / split, root / "annotations" / f"person_keypoints_{split}.json", **kwargs)

    num_classes = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not 0 <= index < len(self.records):
            raise IndexError(index)
        r = self.records[index]
        image = read_image(r["path"])
        boxes, kps, keep = r["boxes"], r["keypoints"], np.arange(len(r["boxes"]))
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, boxes, kps, keep = self.transform(image, boxes, kps, rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                "boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
                "keypoints": torch.from_numpy(np.ascontiguousarray(kps, np.float32)),
                "iscrowd": torch.from_numpy(r["iscrowd"][keep]), "area": torch.from_numpy(r["area"][keep]),
                "image_id": r["image_id"], "index": index}


def collate_pose(samples: Sequence[Mapping[str, Any]], *, max_objects: Optional[int] = None,
                 multiple: int = 32) -> Dict[str, Any]:
    """Samples -> ``image`` [N, 3, H, W] (zero-padded bottom / right to a multiple of ``multiple``), ``boxes``
    [N, M, 4], ``classes`` [N, M] (0 person, -1 padding and crowd), ``keypoints`` [N, M, 17, 3], ``image_id``,
    ``size`` (h, w) per image. M: the most non-crowd people of an image of the batch (at least 1), or
    ``max_objects`` (images with more keep their first M)."""
    if not samples:
        raise ValueError("collate_pose: empty batch")
    h = max(int(s["image"].shape[-2]) for s in samples)
    w = max(int(s["image"].shape[-1]) for s in samples)
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    n = len(samples)
    images = torch.zeros((n, 3, H, W), dtype=torch.uint8)
    people = [(~s["iscrowd"]).nonzero().reshape(-1) for s in samples]
    m = max(1, max(len(p) for p in people)) if max_objects is None else int(max_objects)
    boxes = torch.zeros((n, m, 4), dtype=torch.float32)
    classes = torch.full((n, m), -1, dtype=torch.int64)
    keypoints = torch.zeros((n, m, 17, 3), dtype=torch.float32)
    for i, s in enumerate(samples):
        sh, sw = s["image"].shape[-2:]
        images[i, :, :sh, :sw] = s["image"]
        p = people[i][:m]
        boxes[i, :len(p)] = s["boxes"][p]
        classes[i, :len(p)] = 0
        keypoints[i, :len(p)] = s["keypoints"][p]
    return {"image": images, "boxes": boxes, "classes": classes, "keypoints": keypoints,
            "image_id": [s.get("image_id") for s in samples],
            "size": [(int(s["image"].shape[-2]), int(s["image"].shape[-1])) for s in samples],
            "index": torch.tensor([int(s.get("index", -1)) for s in samples], dtype=torch.int64)}
