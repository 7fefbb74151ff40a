"""The published Panoptic-DeepLab target generator's algorithm, re-implemented for timing (bench_panoptic.py).

Panoptic-DeepLab's reference code (bowenc0221/panoptic-deeplab, ``PanopticTargetGenerator``; detectron2's
``PanopticDeepLabTargetGenerator`` is the same less the foreground map) builds the targets of one image in numpy,
one segment at a time: for each segment of ``segments_info`` a full-image comparison ``panoptic == id`` gives its
mask, which writes the semantic class, the foreground (thing classes), the center and offset weights and (small
things) the semantic weight; a thing's pixel list (``np.where``) gives its centroid (mean y, mean x), which is
rounded to a whole pixel, where a precomputed (6 sigma + 3)-pixel Gaussian is max-pasted; its pixels get
centroid minus pixel (coordinate maps made by cumulative sums) as offsets; the results are returned converted
(``astype``: semantic and foreground int64, the rest float32). This module follows that algorithm step by step
(written here from its description, not copied), so that the "targets against the published generator" row is
timed in the same run as ours; until 2026-12-08 it left out the foreground map, the cumulative-sum coordinates
and the conversions (docs/benchmarks.md gives the ratio both ways). Not timed, as not ours either: decoding the
RGB-encoded PNG into ids (``rgb2id``), which the published generator does first.
Cityscapes settings as published: ignore_stuff_in_offset, small instances under 4096 pixels weigh 3.

Not a reference for values (tests/panoptic/reference.py is): its Gaussian window is 6 sigma + 3 pixels where
ours stops at 3 sigma, and crowd and void follow the segments list rather than the label encoding.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np


def segments_of(panoptic: np.ndarray, thing_ids: Sequence[int], label_divisor: int = 1000,
                num_classes: int = 19) -> List[dict]:
    """``segments_info`` of a [H, W] Cityscapes-encoded id map, as the dataset loader hands it to the generator
    (not timed): id, category_id, iscrowd (a thing class with instance 0); void ids are not segments."""
    out = []
    for pid in np.unique(panoptic):
        cls = int(pid) // label_divisor
        if pid < 0 or cls >= num_classes:
            continue
        out.append({"id": int(pid), "category_id": cls, "iscrowd": int(cls in thing_ids and pid % label_divisor == 0)})
    return out


class PublishedTargets:
    """The per-image numpy generator: ``generator(panoptic [H, W], segments_info)`` -> dict of arrays."""

    def __init__(self, ignore_label: int = 255, thing_ids: Sequence[int] = (11, 12, 13, 14, 15, 16, 17, 18),
                 sigma: float = 8.0, ignore_stuff_in_offset: bool = True, small_instance_area: int = 4096,
                 small_instance_weight: float = 3.0, ignore_crowd_in_semantic: bool = False, complete: bool = True):
        """``complete=False``: the algorithm as this module had it before 2026-12-08 (no foreground map, meshgrid
        coordinates, results returned as built), for the comparison with earlier runs."""
        self.complete = complete
        self.ignore_label = ignore_label
        self.thing_ids = set(thing_ids)
        self.ignore_stuff_in_offset = ignore_stuff_in_offset
        self.small_instance_area = small_instance_area
        self.small_instance_weight = small_instance_weight
        self.ignore_crowd_in_semantic = ignore_crowd_in_semantic
        self.sigma = sigma
        size = int(6 * sigma + 3)  # the Gaussian patch, centred at 3 sigma + 1
        grid = np.arange(size, dtype=np.float64)
        mid = 3 * sigma + 1
        self.gaussian = np.exp(-((grid[None, :] - mid) ** 2 + (grid[:, None] - mid) ** 2) / (2 * sigma ** 2))

    def __call__(self, panoptic: np.ndarray, segments: List[dict]) -> Dict[str, np.ndarray]:
        h, w = panoptic.shape
        complete = self.complete
        semantic = np.zeros((h, w), np.uint8) + self.ignore_label if complete else \
            np.full((h, w), self.ignore_label, np.uint8)
        foreground = np.zeros((h, w), np.uint8) if complete else None
        center = np.zeros((h, w), np.float32)
        offset = np.zeros((2, h, w), np.float32)
        if complete:
            y_coord = np.cumsum(np.ones((h, w), np.float32), axis=0) - 1
            x_coord = np.cumsum(np.ones((h, w), np.float32), axis=1) - 1
        else:
            y_coord, x_coord = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                                           indexing="ij")
        semantic_weights = np.ones((h, w), np.uint8)
        center_weights = np.zeros((h, w), np.uint8)
        offset_weights = np.zeros((h, w), np.uint8)
        points = []
        s = self.sigma
        for seg in segments:
            cat = seg["category_id"]
            if not (self.ignore_crowd_in_semantic and seg["iscrowd"]):
                semantic[panoptic == seg["id"]] = cat
            if complete and cat in self.thing_ids:
                foreground[panoptic == seg["id"]] = 1
            if not seg["iscrowd"]:
                center_weights[panoptic == seg["id"]] = 1
                if not self.ignore_stuff_in_offset or cat in self.thing_ids:
                    offset_weights[panoptic == seg["id"]] = 1
            if cat not in self.thing_ids or seg["iscrowd"]:
                continue
            where = np.where(panoptic == seg["id"])
            if len(where[0]) == 0:
                continue
            if len(where[0]) < self.small_instance_area:
                semantic_weights[panoptic == seg["id"]] = self.small_instance_weight
            cy, cx = np.mean(where[0]), np.mean(where[1])
            points.append([cy, cx])
            y, x = int(np.round(cy)), int(np.round(cx))
            left, top = int(np.round(x - 3 * s - 1)), int(np.round(y - 3 * s - 1))
            right, bottom = int(np.round(x + 3 * s + 2)), int(np.round(y + 3 * s + 2))
            if left >= w or top >= h or right < 0 or bottom < 0:
                continue
            c0, c1 = max(0, -left), min(right, w) - left
            r0, r1 = max(0, -top), min(bottom, h) - top
            x0, x1 = max(0, left), min(right, w)
            y0, y1 = max(0, top), min(bottom, h)
            center[y0:y1, x0:x1] = np.maximum(center[y0:y1, x0:x1], self.gaussian[r0:r1, c0:c1])
            zeros, ones = np.zeros_like(where[0]), np.ones_like(where[0])
            offset[(zeros, where[0], where[1])] = cy - y_coord[where]
            offset[(ones, where[0], where[1])] = cx - x_coord[where]
        if not complete:
            return {"semantic": semantic.astype(np.int64), "center": center[None], "center_points": points,
                    "offset": offset, "semantic_weights": semantic_weights, "center_weights": center_weights[None],
                    "offset_weights": offset_weights[None]}
        return {"semantic": semantic.astype(np.int64), "foreground": foreground.astype(np.int64),
                "center": center[None].astype(np.float32), "center_points": points,
                "offset": offset.astype(np.float32), "semantic_weights": semantic_weights.astype(np.float32),
                "center_weights": center_weights[None].astype(np.float32),
                "offset_weights": offset_weights[None].astype(np.float32)}
