"""Box detection AP through pycocotools (COCOeval, bbox), generic over box outputs.

Nothing here knows a particular OM or dataset: predictions are boxes
(x1, y1, x2, y2) in pixels with scores and integer classes, ground truth is
boxes with classes (any id < 0 is padding) and optional crowd flags, in either
form:

* padded tensors ``[N, M, 4]`` / ``[N, M]`` (what an OM's truth inputs hold),
* or one tensor / array per image (lists of length N), for variable counts.

Crowd ground truth (``iscrowd``) follows COCO: a detection overlapping it is
neither a true nor a false positive. Areas for COCO's small / medium / large
ranges are the box areas unless ``gt_area`` is given (COCO uses mask areas).
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["BoxAP"]

PerImage = Union[Tensor, np.ndarray, Sequence[Any]]


def _rows(x: Optional[PerImage], n: int, what: str) -> List[Optional[np.ndarray]]:
    """A batched tensor or a per-image list -> n numpy arrays (None stays None)."""
    if x is None:
        return [None] * n
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    if len(x) != n:
        raise ValueError(f"BoxAP: {what} has {len(x)} images, expected {n}")
    return [np.asarray(v.detach().cpu().numpy() if isinstance(v, Tensor) else v) for v in x]


class BoxAP:
    """COCO box AP, AP50, AP75 (and AP small / medium / large) over accumulated images.

    ``update(boxes, scores, classes, gt_boxes, gt_classes, gt_iscrowd=None)``;
    ``compute()`` -> ``{"ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"}``
    in [0, 1], NaN where the ground truth holds no (non-crowd) object of the
    range. Detections with ``score <= min_score`` are dropped (an OM that
    always returns K detections fills the tail with score 0).
    """

    STATS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")

    def __init__(self, num_classes: int, *, min_score: float = 0.0, max_dets: int = 100) -> None:
        self.num_classes = int(num_classes)
        self.min_score = float(min_score)
        self.max_dets = int(max_dets)
        self.reset()

    def reset(self) -> None:
        self._images: List[dict] = []
        self._gt: List[dict] = []
        self._dt: List[dict] = []

    @property
    def images(self) -> int:
        return len(self._images)

    @torch.no_grad()
    def update(self, boxes: PerImage, scores: PerImage, classes: PerImage, gt_boxes: PerImage, gt_classes: PerImage,
               gt_iscrowd: Optional[PerImage] = None, gt_area: Optional[PerImage] = None,
               image_sizes: Optional[Sequence[Sequence[int]]] = None) -> None:
        n = len(boxes)
        pb, ps, pc = _rows(boxes, n, "boxes"), _rows(scores, n, "scores"), _rows(classes, n, "classes")
        gb, gc = _rows(gt_boxes, n, "gt_boxes"), _rows(gt_classes, n, "gt_classes")
        gcrowd, garea = _rows(gt_iscrowd, n, "gt_iscrowd"), _rows(gt_area, n, "gt_area")
        for i in range(n):
            image_id = len(self._images) + 1
            entry: Dict[str, Any] = {"id": image_id}
            if image_sizes is not None:
                entry["height"], entry["width"] = int(image_sizes[i][0]), int(image_sizes[i][1])
            self._images.append(entry)
            b = np.asarray(gb[i], np.float64).reshape(-1, 4)
            c = np.asarray(gc[i]).reshape(-1).astype(np.int64)
            crowd = np.zeros(len(c), bool) if gcrowd[i] is None else np.asarray(gcrowd[i]).reshape(-1).astype(bool)
            keep = (c >= 0) & (c < self.num_classes) & np.isfinite(b).all(1)
            wh = np.clip(b[:, 2:] - b[:, :2], 0.0, None)
            area = wh[:, 0] * wh[:, 1] if garea[i] is None else np.asarray(garea[i], np.float64).reshape(-1)
            for j in np.nonzero(keep)[0]:
                self._gt.append({"id": len(self._gt) + 1, "image_id": image_id, "category_id": int(c[j]) + 1,
                                 "bbox": [float(b[j, 0]), float(b[j, 1]), float(wh[j, 0]), float(wh[j, 1])],
                                 "area": float(area[j]), "iscrowd": int(crowd[j])})
            db = np.asarray(pb[i], np.float64).reshape(-1, 4)
            ds = np.asarray(ps[i], np.float64).reshape(-1)
            dc = np.asarray(pc[i]).reshape(-1).astype(np.int64)
            ok = (ds > self.min_score) & (dc >= 0) & (dc < self.num_classes) & np.isfinite(db).all(1)
            dwh = np.clip(db[:, 2:] - db[:, :2], 0.0, None)
            for j in np.nonzero(ok)[0]:
                self._dt.append({"image_id": image_id, "category_id": int(dc[j]) + 1, "score": float(ds[j]),
                                 "bbox": [float(db[j, 0]), float(db[j, 1]), float(dwh[j, 0]), float(dwh[j, 1])]})

    def compute(self) -> Dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        nan = float("nan")
        if not any(a["iscrowd"] == 0 for a in self._gt):
            return {k: nan for k in self.STATS}
        if not self._dt:
            return {k: 0.0 for k in self.STATS}
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": [dict(im) for im in self._images], "annotations": [dict(a) for a in self._gt],
                          "categories": [{"id": c + 1, "name": str(c)} for c in range(self.num_classes)]}
            gt.createIndex()
            dt = gt.loadRes([dict(d) for d in self._dt])
            ev = COCOeval(gt, dt, iouType="bbox")
            ev.params.maxDets = [1, 10, self.max_dets]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        st = ev.stats
        fix = lambda v: nan if v < 0 else float(v)  # noqa: E731 (-1: no ground truth in that range)
        return {k: fix(st[i]) for i, k in enumerate(self.STATS)}
