"""Evaluation of panoptic, semantic and instance predictions.

All metrics take id maps in omgen's convention (see docs/evaluation.md):

* panoptic id = ``class * label_divisor + instance`` for thing instances
  (instance >= 1), ``class * label_divisor`` for stuff;
* a thing class with instance 0 in the ground truth is a *crowd* region;
* void = ``ignore_label * label_divisor`` (any id whose class is
  ``ignore_label``).

``PanopticQuality`` reproduces COCO's reference ``panopticapi.evaluation``
exactly (match at IoU > 0.5, void pixels of the ground truth removed from the
predicted segments, crowd regions absorbing unmatched predictions of their
class) but is vectorised in torch: one ``torch.unique`` over segment ids and
one over (ground-truth, prediction) pair codes per batch, no Python loop over
segments or pixels, on whatever device the inputs live on.

``MeanIoU`` accumulates a confusion matrix with ``bincount``.
``InstanceAP`` converts thing instances to COCO RLE and runs pycocotools'
``COCOeval`` (segm) for AP, AP50, AP75.
"""

from __future__ import annotations

import contextlib
import io
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "PanopticQuality",
    "MeanIoU",
    "InstanceAP",
    "panoptic_quality_stats",
    "summarize_pq",
]


def _as_batch(x: Tensor) -> Tensor:
    """[N,1,H,W] or [N,H,W] or [H,W] -> [N, H*W] int64."""
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected id maps [N,1,H,W], got {tuple(x.shape)}")
        x = x[:, 0]
    elif x.dim() == 2:
        x = x[None]
    elif x.dim() != 3:
        raise ValueError(f"expected id maps [N,1,H,W] or [N,H,W], got {tuple(x.shape)}")
    if x.is_floating_point() or x.dtype == torch.bool:
        raise TypeError(f"id maps must be integer tensors, got {x.dtype}")
    return x.reshape(x.shape[0], -1).long()


# Dense bincount tables up to this many bins; beyond it, sort-based unique.
_MAX_DENSE_BINS = 1 << 24


def _segments(key: Tensor, bins: int):
    """Compact non-negative keys: (sorted distinct keys, index of each element, counts).

    Same result as ``torch.unique(key, return_inverse=True, return_counts=True)``;
    a dense ``bincount`` + lookup table when ``bins`` is small enough (about 10x
    faster than sorting on the CPU).
    """
    if bins <= max(_MAX_DENSE_BINS, 2 * key.numel()):
        counts = torch.bincount(key, minlength=bins)
        present = counts > 0
        keys = present.nonzero().reshape(-1)
        lut = torch.cumsum(present, 0) - 1
        return keys, lut[key], counts[keys]
    return torch.unique(key, return_inverse=True, return_counts=True)


def panoptic_quality_stats(
    pred: Tensor,
    truth: Tensor,
    num_classes: int,
    is_thing: Tensor,
    label_divisor: int,
    ignore_label: int,
) -> Dict[str, Tensor]:
    """Per-class PQ statistics of one batch of panoptic id maps.

    Args:
        pred, truth: integer id maps ``[N,1,H,W]`` (or ``[N,H,W]``), same shape.
        num_classes: K; classes are ``0 .. K-1``.
        is_thing: bool ``[K]``.
        label_divisor, ignore_label: id convention; every id of class
            ``ignore_label`` is void.

    Returns:
        ``iou_sum`` (float64 ``[K]``), ``tp``, ``fp``, ``fn`` (int64 ``[K]``).
    """
    p = _as_batch(pred)
    t = _as_batch(truth)
    if p.shape != t.shape:
        raise ValueError(f"pred and truth shapes differ: {tuple(pred.shape)} vs {tuple(truth.shape)}")
    if p.device != t.device:
        raise ValueError("pred and truth must be on the same device")
    device = t.device
    k = num_classes
    is_thing = is_thing.to(device=device, dtype=torch.bool)
    n_img = t.shape[0]
    zeros_f = torch.zeros(k, dtype=torch.float64, device=device)
    zeros_i = torch.zeros(k, dtype=torch.long, device=device)
    if t.numel() == 0:
        return {"iou_sum": zeros_f, "tp": zeros_i, "fp": zeros_i.clone(), "fn": zeros_i.clone()}
    lo = min(int(p.min()), int(t.min()))
    if lo < 0:
        raise ValueError(f"negative panoptic id {lo}")

    # -- segments: (image, id) pairs, made distinct across images by an offset.
    # Everything after this block works on segments, not pixels.
    span = max(int(p.max()), int(t.max())) + 1
    img = torch.arange(n_img, device=device, dtype=torch.long)[:, None] * span
    t_key, t_inv, t_area = _segments((t + img).reshape(-1), n_img * span)
    p_key, p_inv, p_area = _segments((p + img).reshape(-1), n_img * span)
    n_t, n_p = t_key.numel(), p_key.numel()

    t_id = t_key % span
    p_id = p_key % span
    t_class = torch.div(t_id, label_divisor, rounding_mode="floor")
    p_class = torch.div(p_id, label_divisor, rounding_mode="floor")
    t_void = t_class == ignore_label
    p_void = p_class == ignore_label
    bad_t = (~t_void) & (t_class >= k)
    bad_p = (~p_void) & (p_class >= k)
    if bool(bad_t.any()) or bool(bad_p.any()):
        raise ValueError(
            f"ids outside classes 0..{k - 1} and void (class {ignore_label}): "
            f"pred {p_id[bad_p][:5].tolist()}, truth {t_id[bad_t][:5].tolist()}"
        )
    t_class_c = t_class.clamp(0, k - 1)  # safe index; void masked separately
    p_class_c = p_class.clamp(0, k - 1)
    t_crowd = (~t_void) & is_thing[t_class_c] & (t_id % label_divisor == 0)

    # -- intersections: distinct (truth segment, predicted segment) pair codes.
    pair, _, inter = _segments(t_inv * n_p + p_inv, n_t * n_p)
    pt = torch.div(pair, n_p, rounding_mode="floor")
    pp = pair % n_p

    # area of each predicted segment lying on ground-truth void
    on_void = t_void[pt]
    void_overlap = torch.zeros(n_p, dtype=torch.long, device=device)
    void_overlap.index_add_(0, pp[on_void], inter[on_void])

    # -- matches: same class, neither void, truth not crowd, IoU > 0.5
    same = (t_class[pt] == p_class[pp]) & (~t_void[pt]) & (~p_void[pp])
    cand = same & (~t_crowd[pt])
    union = p_area[pp] + t_area[pt] - inter - void_overlap[pp]
    iou = inter.double() / union.clamp(min=1).double()
    match = cand & (iou > 0.5)

    m_cls = t_class_c[pt[match]]
    iou_sum = zeros_f.index_add(0, m_cls, iou[match])
    tp = torch.bincount(m_cls, minlength=k)[:k]

    t_matched = torch.zeros(n_t, dtype=torch.bool, device=device)
    t_matched[pt[match]] = True
    p_matched = torch.zeros(n_p, dtype=torch.bool, device=device)
    p_matched[pp[match]] = True

    # -- false negatives: unmatched, non-void, non-crowd truth segments
    fn_mask = (~t_matched) & (~t_void) & (~t_crowd)
    fn = torch.bincount(t_class_c[fn_mask], minlength=k)[:k]

    # -- false positives: unmatched, non-void predictions unless more than
    # half of them lies on void or on the crowd region of their own class.
    on_crowd = same & t_crowd[pt]
    crowd_overlap = torch.zeros(n_p, dtype=torch.long, device=device)
    crowd_overlap.index_add_(0, pp[on_crowd], inter[on_crowd])
    ignored = 2 * (void_overlap + crowd_overlap) > p_area
    fp_mask = (~p_matched) & (~p_void) & (~ignored)
    fp = torch.bincount(p_class_c[fp_mask], minlength=k)[:k]

    return {"iou_sum": iou_sum, "tp": tp, "fp": fp, "fn": fn}


def summarize_pq(
    iou_sum: Tensor, tp: Tensor, fp: Tensor, fn: Tensor, is_thing: Tensor
) -> Dict[str, Union[float, int, Tensor]]:
    """PQ/SQ/RQ per class and averaged over all, thing and stuff classes.

    A class enters an average only when it has at least one TP, FP or FN (as
    in panopticapi). An average over no class is NaN (panopticapi raises).
    """
    tp_f = tp.double()
    den = tp_f + 0.5 * fp.double() + 0.5 * fn.double()
    valid = den > 0
    pq = torch.where(valid, iou_sum / den.clamp(min=1e-12), torch.zeros_like(iou_sum))
    sq = torch.where(tp > 0, iou_sum / tp_f.clamp(min=1), torch.zeros_like(iou_sum))
    rq = torch.where(valid, tp_f / den.clamp(min=1e-12), torch.zeros_like(iou_sum))
    is_thing = is_thing.to(device=pq.device, dtype=torch.bool)
    out: Dict[str, Union[float, int, Tensor]] = {}
    for name, sel in (("", torch.ones_like(is_thing)), ("_things", is_thing), ("_stuff", ~is_thing)):
        m = valid & sel
        n = int(m.sum())
        for metric, per in (("pq", pq), ("sq", sq), ("rq", rq)):
            out[metric + name] = float(per[m].mean()) if n > 0 else float("nan")
        out["n" + name] = n
    out.update(
        per_class_pq=pq, per_class_sq=sq, per_class_rq=rq,
        per_class_tp=tp, per_class_fp=fp, per_class_fn=fn,
        per_class_iou_sum=iou_sum, per_class_valid=valid,
    )
    return out


class PanopticQuality:
    """Accumulating panoptic quality (Kirillov et al. 2019), panopticapi semantics.

    >>> metric = PanopticQuality(19, thing_ids=range(11, 19))
    >>> metric.update(pred_ids, truth_ids)        # [N,1,H,W] integer tensors
    >>> metric.compute()["pq"]

    ``compute()`` returns a dict with ``pq, sq, rq, n`` (all classes),
    ``pq_things, sq_things, rq_things, n_things``, ``pq_stuff, ...`` (floats,
    NaN when no class of the group appears) and per-class tensors
    ``per_class_{pq,sq,rq,tp,fp,fn,iou_sum,valid}`` of shape ``[K]``.
    """

    def __init__(
        self,
        num_classes: int,
        thing_ids: Sequence[int],
        label_divisor: int = 1000,
        ignore_label: int = 255,
    ) -> None:
        if num_classes <= 0:
            raise ValueError("num_classes must be positive")
        if 0 <= ignore_label < num_classes:
            raise ValueError("ignore_label must not be a class id")
        self.num_classes = int(num_classes)
        self.label_divisor = int(label_divisor)
        self.ignore_label = int(ignore_label)
        thing_ids = [int(c) for c in thing_ids]
        if any(c < 0 or c >= num_classes for c in thing_ids):
            raise ValueError(f"thing ids {thing_ids} outside 0..{num_classes - 1}")
        self.is_thing = torch.zeros(num_classes, dtype=torch.bool)
        self.is_thing[thing_ids] = True
        self.reset()

    def reset(self) -> None:
        k = self.num_classes
        self.iou_sum = torch.zeros(k, dtype=torch.float64)
        self.tp = torch.zeros(k, dtype=torch.long)
        self.fp = torch.zeros(k, dtype=torch.long)
        self.fn = torch.zeros(k, dtype=torch.long)

    @torch.no_grad()
    def update(self, pred: Tensor, truth: Tensor) -> None:
        """Accumulate a batch of predicted and ground-truth id maps [N,1,H,W]."""
        s = panoptic_quality_stats(
            pred, truth, self.num_classes, self.is_thing, self.label_divisor, self.ignore_label
        )
        dev = s["tp"].device
        if self.tp.device != dev:
            self.iou_sum, self.tp, self.fp, self.fn = (
                x.to(dev) for x in (self.iou_sum, self.tp, self.fp, self.fn)
            )
        self.iou_sum += s["iou_sum"]
        self.tp += s["tp"]
        self.fp += s["fp"]
        self.fn += s["fn"]

    def compute(self) -> Dict[str, Union[float, int, Tensor]]:
        return summarize_pq(self.iou_sum, self.tp, self.fp, self.fn, self.is_thing)


class MeanIoU:
    """Accumulating semantic-segmentation IoU from a confusion matrix.

    ``update(pred, truth)`` takes class maps ``[N,1,H,W]`` / ``[N,H,W]``; with
    ``label_divisor`` set, it takes panoptic id maps and divides them. Truth
    pixels labelled ``ignore_label`` (or any class outside ``0..K-1``) are
    skipped. A prediction outside ``0..K-1`` on a valid pixel counts as a miss
    of the true class (a false negative for it, a false positive for none).

    ``compute()`` -> ``miou`` (mean over classes present in truth or
    prediction), ``pixel_accuracy``, ``per_class_iou`` (NaN where absent) and
    ``confusion`` ``[K, K]`` (rows truth, columns prediction).
    """

    def __init__(self, num_classes: int, ignore_label: int = 255, label_divisor: Optional[int] = None):
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.label_divisor = label_divisor
        self.reset()

    def reset(self) -> None:
        k = self.num_classes
        self.confusion = torch.zeros(k, k + 1, dtype=torch.long)  # last column: invalid prediction

    def _class_index(self, x: Tensor) -> Tensor:
        """Map ids to class indices 0..K-1, anything else to K (a lookup table when small)."""
        k = self.num_classes
        div = self.label_divisor
        lo, hi = int(x.min()), int(x.max())
        if lo >= 0 and hi < max(_MAX_DENSE_BINS, 2 * x.numel()):
            lut = torch.arange(hi + 1, device=x.device)
            if div is not None:
                lut = torch.div(lut, div, rounding_mode="floor")
            lut = torch.where(lut < k, lut, torch.full_like(lut, k))
            return lut[x]
        if div is not None:
            x = torch.div(x, div, rounding_mode="floor")
        return torch.where((x >= 0) & (x < k), x, torch.full_like(x, k))

    @torch.no_grad()
    def update(self, pred: Tensor, truth: Tensor) -> None:
        p = _as_batch(pred).reshape(-1)
        t = _as_batch(truth).reshape(-1)
        if p.shape != t.shape:
            raise ValueError("pred and truth shapes differ")
        if t.numel() == 0:
            return
        k = self.num_classes
        # row K: truth outside the classes (ignored); column K: invalid prediction
        codes = self._class_index(t) * (k + 1) + self._class_index(p)
        cm = torch.bincount(codes, minlength=(k + 1) * (k + 1)).reshape(k + 1, k + 1)[:k]
        if self.confusion.device != cm.device:
            self.confusion = self.confusion.to(cm.device)
        self.confusion += cm

    def compute(self) -> Dict[str, Union[float, Tensor]]:
        cm = self.confusion.double()
        k = self.num_classes
        tp = cm.diagonal()[:k]
        gt = cm.sum(1)
        pr = cm[:, :k].sum(0)
        union = gt + pr - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
        present = union > 0
        miou = float(iou[present].mean()) if bool(present.any()) else float("nan")
        total = float(gt.sum())
        acc = float(tp.sum()) / total if total > 0 else float("nan")
        return {"miou": miou, "pixel_accuracy": acc, "per_class_iou": iou, "confusion": self.confusion[:, :k]}


ScoreSpec = Union[None, Tensor, Sequence[Mapping[int, float]]]


class InstanceAP:
    """Instance mask AP of the thing instances through pycocotools (COCOeval, segm).

    ``update(pred, truth, scores)``: panoptic id maps ``[N,1,H,W]``. Every
    predicted id of a thing class (any instance number) is one detection;
    ``scores`` is None (all 1.0), a float map ``[N,1,H,W]`` (a detection's score
    is the mean over its pixels), or one ``{segment id: score}`` dict per image.
    Ground truth: thing instances (instance >= 1) are objects, a thing class
    with instance 0 is a crowd region (``iscrowd=1``), stuff and void are not
    objects. ``compute()`` -> ``{"ap", "ap50", "ap75"}`` in [0, 1]; NaN when
    the ground truth holds no object.
    """

    def __init__(self, thing_ids: Sequence[int], label_divisor: int = 1000, ignore_label: int = 255):
        self.thing_ids = sorted(int(c) for c in thing_ids)
        self.label_divisor = int(label_divisor)
        self.ignore_label = int(ignore_label)
        self.reset()

    def reset(self) -> None:
        self._images: List[dict] = []
        self._gt: List[dict] = []
        self._dt: List[dict] = []

    def _thing_segments(self, ids: np.ndarray) -> np.ndarray:
        u = np.unique(ids)
        cls = u // self.label_divisor
        return u[np.isin(cls, self.thing_ids)]

    @staticmethod
    def _encode(ids: np.ndarray, segs: np.ndarray) -> List[dict]:
        from pycocotools import mask as mask_util

        if len(segs) == 0:
            return []
        masks = np.asfortranarray((ids[:, :, None] == segs[None, None, :]).astype(np.uint8))
        rles = mask_util.encode(masks)
        for r in rles:
            r["counts"] = r["counts"].decode("ascii")
        return rles

    @torch.no_grad()
    def update(self, pred: Tensor, truth: Tensor, scores: ScoreSpec = None) -> None:
        from pycocotools import mask as mask_util

        if pred.dim() == 3:
            pred, truth = pred[:, None], truth[:, None]
        if pred.shape != truth.shape:
            raise ValueError("pred and truth shapes differ")
        n, _, h, w = pred.shape
        pred_np = pred[:, 0].cpu().numpy().astype(np.int64)
        truth_np = truth[:, 0].cpu().numpy().astype(np.int64)
        score_np = None
        if isinstance(scores, Tensor):
            score_np = scores.reshape(n, h, w).double().cpu().numpy()
        for i in range(n):
            image_id = len(self._images) + 1
            self._images.append({"id": image_id, "height": int(h), "width": int(w)})
            # ground truth
            segs = self._thing_segments(truth_np[i])
            for seg, rle in zip(segs, self._encode(truth_np[i], segs)):
                area = float(mask_util.area(rle))
                self._gt.append({
                    "id": len(self._gt) + 1, "image_id": image_id,
                    "category_id": int(seg // self.label_divisor),
                    "segmentation": rle, "area": area,
                    "bbox": [float(x) for x in mask_util.toBbox(rle)],
                    "iscrowd": int(seg % self.label_divisor == 0),
                })
            # detections
            segs = self._thing_segments(pred_np[i])
            if score_np is not None and len(segs):
                # mean score per segment, vectorised over segments
                u, inv = np.unique(pred_np[i].reshape(-1), return_inverse=True)
                sums = np.bincount(inv, weights=score_np[i].reshape(-1))
                cnts = np.bincount(inv)
                seg_scores = (sums / cnts)[np.searchsorted(u, segs)]
            elif scores is not None and len(segs):
                d = scores[i]
                seg_scores = np.array([float(d.get(int(s), 0.0)) for s in segs])
            else:
                seg_scores = np.ones(len(segs))
            for seg, rle, sc in zip(segs, self._encode(pred_np[i], segs), seg_scores):
                self._dt.append({
                    "image_id": image_id, "category_id": int(seg // self.label_divisor),
                    "segmentation": rle, "score": float(sc),
                })

    def compute(self) -> Dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        nan = float("nan")
        if not any(a["iscrowd"] == 0 for a in self._gt):
            return {"ap": nan, "ap50": nan, "ap75": nan}
        if not self._dt:
            return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {
                "images": self._images,
                "annotations": self._gt,
                "categories": [{"id": c, "name": str(c)} for c in self.thing_ids],
            }
            gt.createIndex()
            dt = gt.loadRes([dict(d) for d in self._dt])
            ev = COCOeval(gt, dt, iouType="segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        st = ev.stats
        fix = lambda v: nan if v < 0 else float(v)  # noqa: E731 (-1: no ground truth)
        return {"ap": fix(st[0]), "ap50": fix(st[1]), "ap75": fix(st[2])}
