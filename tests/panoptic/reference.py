"""Plain loop-based references for the Panoptic-DeepLab OM, written from the math sheet.

Deliberately naive: Python loops over pixels, instances and classes on numpy
arrays, float64 unless a float32 step is part of the definition (votes and
their distances to the centers, which the decoder compares in float32).
Conventions (docs/panoptic.md): void = id < 0 or class >= num_classes;
crowd = thing class with instance 0; stuff ignores the instance part.
"""
from __future__ import annotations

import math

import numpy as np

CITYSCAPES = dict(num_classes=19, thing_ids=[11, 12, 13, 14, 15, 16, 17, 18], ignore_label=255,
                  label_divisor=1000, ignore_crowd_in_semantic=False, sigma=8.0, gaussian_radius=3.0,
                  small_instance_area=4096, small_instance_weight=3.0, top_k_percent_pixels=0.2,
                  semantic_loss_weight=1.0, center_loss_weight=200.0, offset_loss_weight=0.01,
                  center_threshold=0.1, nms_kernel=7, top_k=200, stuff_area=2048, wrong_centroid_weight=1.0)


def parse_pixel(pid, cfg):
    """(class or None for void, instance, is_thing, is_crowd)."""
    k, div = cfg["num_classes"], cfg["label_divisor"]
    if pid < 0 or pid >= k * div:
        return None, 0, False, False
    cls, inst = pid // div, pid % div
    thing = cls in cfg["thing_ids"]
    return cls, inst, thing, thing and inst == 0


def center_point(cy, cx, exact=False):
    """Where an instance's center Gaussian sits: the float32 centroid rounded half to even (Python's round, the
    published generator's np.round), or the exact centroid (mixin exact-centroid-heatmap)."""
    if exact:
        return cy, cx
    return float(round(float(np.float32(cy)))), float(round(float(np.float32(cx))))


def targets(pan, cfg, exact_centers=False):
    """All ground-truth maps of a [N,1,H,W] integer array; instances keyed (n, panoptic id)."""
    pan = np.asarray(pan)
    n_img, _, h, w = pan.shape
    out = {name: np.zeros((n_img, 1, h, w), dtype) for name, dtype in [
        ("semantic_truth", np.int64), ("instance_truth", np.int64), ("thing_mask_truth", bool),
        ("crowd_truth", bool), ("void_truth", bool), ("center_truth", np.float64),
        ("semantic_weights", np.float64), ("center_weights", np.float64), ("offset_weights", np.float64)]}
    out["offset_truth"] = np.zeros((n_img, 2, h, w), np.float64)
    pixels = {}
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                pid = int(pan[n, 0, y, x])
                cls, inst, thing, crowd = parse_pixel(pid, cfg)
                out["void_truth"][n, 0, y, x] = cls is None
                out["thing_mask_truth"][n, 0, y, x] = thing
                out["crowd_truth"][n, 0, y, x] = crowd
                sem = cfg["ignore_label"] if cls is None or (crowd and cfg["ignore_crowd_in_semantic"]) else cls
                out["semantic_truth"][n, 0, y, x] = sem
                out["instance_truth"][n, 0, y, x] = pid if thing and not crowd else -1
                out["center_weights"][n, 0, y, x] = 0.0 if cls is None or crowd else 1.0
                if thing and not crowd:
                    pixels.setdefault((n, pid), []).append((y, x))
    centroids = {}
    for key, pts in pixels.items():
        centroids[key] = (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))
    radius = cfg["gaussian_radius"] * cfg["sigma"]
    for (n, pid), pts in pixels.items():
        cy, cx = centroids[(n, pid)]
        for y, x in pts:
            out["offset_truth"][n, 0, y, x] = cy - y
            out["offset_truth"][n, 1, y, x] = cx - x
            out["offset_weights"][n, 0, y, x] = 1.0
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                sem = out["semantic_truth"][n, 0, y, x]
                weight = 0.0 if sem == cfg["ignore_label"] else 1.0
                pid = int(out["instance_truth"][n, 0, y, x])
                if pid >= 0 and weight > 0 and len(pixels[(n, pid)]) < cfg["small_instance_area"]:
                    weight = cfg["small_instance_weight"]
                out["semantic_weights"][n, 0, y, x] = weight
                best = 0.0
                for (m, _), centroid in centroids.items():
                    cy, cx = center_point(*centroid, exact=exact_centers)
                    if m == n and abs(y - cy) <= radius and abs(x - cx) <= radius:
                        best = max(best, math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * cfg["sigma"] ** 2)))
                out["center_truth"][n, 0, y, x] = best
    out["centroids"] = centroids
    out["areas"] = {key: len(pts) for key, pts in pixels.items()}
    return out


def log_softmax(v):
    m = max(v)
    s = sum(math.exp(a - m) for a in v)
    return [a - m - math.log(s) for a in v]


def losses(logits, center, offsets, pan, cfg):
    t = targets(pan, cfg)
    n_img, k, h, w = logits.shape
    pixel = []
    labelled = 0
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                label = int(t["semantic_truth"][n, 0, y, x])
                if label == cfg["ignore_label"]:
                    pixel.append(0.0)
                    continue
                labelled += 1
                lp = log_softmax([float(logits[n, c, y, x]) for c in range(k)])
                pixel.append(-lp[label] * t["semantic_weights"][n, 0, y, x])
    keep = int(cfg["top_k_percent_pixels"] * labelled)
    semantic = sum(sorted(pixel, reverse=True)[:keep]) / keep if keep > 0 else 0.0
    num = den = 0.0
    onum = oden = 0.0
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                cw = t["center_weights"][n, 0, y, x]
                num += cw * (float(center[n, 0, y, x]) - t["center_truth"][n, 0, y, x]) ** 2
                den += cw
                if t["offset_weights"][n, 0, y, x] > 0:
                    onum += sum(abs(float(offsets[n, c, y, x]) - t["offset_truth"][n, c, y, x]) for c in range(2))
                    oden += 1
    center_loss = num / den if den > 0 else 0.0
    offset_loss = onum / oden if oden > 0 else 0.0
    total = (cfg["semantic_loss_weight"] * semantic + cfg["center_loss_weight"] * center_loss
             + cfg["offset_loss_weight"] * offset_loss)
    return dict(loss=total, semantic_loss=semantic, center_loss=center_loss, offset_loss=offset_loss)


def decode(logits, center, offsets, cfg):
    """Reference decoding; centers as a list per image of (score, y, x), instance slots index it."""
    logits = np.asarray(logits)
    center = np.asarray(center, np.float32)
    offsets = np.asarray(offsets, np.float32)
    n_img, k, h, w = logits.shape
    r = cfg["nms_kernel"] // 2
    sem = np.zeros((n_img, 1, h, w), np.int64)
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                best = 0
                for c in range(1, k):
                    if logits[n, c, y, x] > logits[n, best, y, x]:
                        best = c
                sem[n, 0, y, x] = best
    return decode_from(sem, center, offsets, cfg)


def find_centers(center, cfg):
    n_img, _, h, w = center.shape
    r = cfg["nms_kernel"] // 2
    centers = []
    for n in range(n_img):
        peaks = []
        for y in range(h):
            for x in range(w):
                v = center[n, 0, y, x]
                if not v > cfg["center_threshold"]:
                    continue
                window = [center[n, 0, yy, xx] for yy in range(max(0, y - r), min(h, y + r + 1))
                          for xx in range(max(0, x - r), min(w, x + r + 1))]
                if v >= max(window):
                    peaks.append((float(v), y, x))
        peaks.sort(key=lambda p: (-p[0], p[1] * w + p[2]))
        centers.append([(s, float(y), float(x)) for s, y, x in peaks[:cfg["top_k"]]])
    return centers


def decode_from(sem, center, offsets, cfg, centers=None):
    """Decoding given semantic ids (oracles reuse it); centers: list per image of (score, y, x)."""
    n_img, _, h, w = sem.shape
    if centers is None:
        centers = find_centers(center, cfg)
    k, div = cfg["num_classes"], cfg["label_divisor"]
    thing = lambda c: 0 <= c < k and c in cfg["thing_ids"]
    ins = np.full((n_img, 1, h, w), -1, np.int64)
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                if not thing(int(sem[n, 0, y, x])) or not centers[n]:
                    continue
                vy = np.float32(y) + np.float32(offsets[n, 0, y, x])
                vx = np.float32(x) + np.float32(offsets[n, 1, y, x])
                best, best_d = -1, None
                for j, (_, cy, cx) in enumerate(centers[n]):
                    dy = vy - np.float32(cy)
                    dx = vx - np.float32(cx)
                    d = np.float32(dy * dy) + np.float32(dx * dx)
                    if best_d is None or d < best_d:
                        best, best_d = j, d
                ins[n, 0, y, x] = best
    classes = []
    for n in range(n_img):
        counts = {}
        for y in range(h):
            for x in range(w):
                j = int(ins[n, 0, y, x])
                if j >= 0:
                    counts.setdefault(j, [0] * k)[int(sem[n, 0, y, x])] += 1
        cls = {}
        for j, row in counts.items():
            best = 0
            for c in range(1, k):
                if row[c] > row[best]:
                    best = c
            cls[j] = best
        classes.append(cls)
    pan = np.full((n_img, 1, h, w), cfg["ignore_label"] * div, np.int64)
    for n in range(n_img):
        area = {}
        for y in range(h):
            for x in range(w):
                c = int(sem[n, 0, y, x])
                if 0 <= c < k and not thing(c):
                    area[c] = area.get(c, 0) + 1
        for y in range(h):
            for x in range(w):
                c = int(sem[n, 0, y, x])
                if 0 <= c < k and not thing(c) and area[c] >= cfg["stuff_area"]:
                    pan[n, 0, y, x] = c * div
                elif thing(c) and ins[n, 0, y, x] >= 0:
                    j = int(ins[n, 0, y, x])
                    pan[n, 0, y, x] = classes[n][j] * div + j + 1
    return dict(semantic_pred=sem, instance_pred=ins, panoptic_pred=pan, centers=centers, classes=classes)


def canonical(ids):
    """Relabel each image's ids by order of first appearance (raster order); -1 / void kept apart.

    Two maps are equal up to a permutation of instance labels iff their canonical forms are equal
    together with the class part (compare `canonical(a)` and `canonical(b)` and the classes).
    """
    ids = np.asarray(ids)
    out = np.zeros(ids.shape, np.int64)
    for n in range(ids.shape[0]):
        seen = {}
        flat = ids[n].reshape(-1)
        res = out[n].reshape(-1)
        for i, v in enumerate(flat):
            v = int(v)
            if v not in seen:
                seen[v] = len(seen)
            res[i] = seen[v]
        out[n] = res.reshape(ids[n].shape)
    return out


def segments(pan, cfg, n):
    """Per image: segment key -> (class, is_crowd, set of pixels) and the set of void pixels.

    Stuff pixels form one segment per class (the instance part is ignored); thing pixels one per id,
    crowd (instance 0) flagged.
    """
    h, w = pan.shape[-2:]
    segs, void = {}, set()
    for y in range(h):
        for x in range(w):
            pid = int(pan[n, 0, y, x])
            cls, inst, thing, crowd = parse_pixel(pid, cfg)
            if cls is None:
                void.add((y, x))
                continue
            key = pid if thing else cls * cfg["label_divisor"]
            segs.setdefault(key, [cls, crowd, set()])[2].add((y, x))
    return segs, void


def panoptic_quality(gt, pred, cfg):
    """PQ as panopticapi defines it (IoU > 0.5 matching, void subtracted from the union, predictions
    mostly on void or on same-class crowd not counted as false positives). Returns (pq, tp, fp, fn,
    iou_sum) over the whole batch; pq averages over the classes that occur, 1.0 if none occurs."""
    stats = {}
    for n in range(gt.shape[0]):
        gsegs, gvoid = segments(gt, cfg, n)
        psegs, _ = segments(pred, cfg, n)
        crowd_of = {}
        for key, (cls, crowd, pts) in gsegs.items():
            if crowd:
                crowd_of.setdefault(cls, set()).update(pts)
        matched_p = set()
        matched_g = set()
        for gk, (gc, gcrowd, gpts) in gsegs.items():
            if gcrowd:
                continue
            for pk, (pc, _, ppts) in psegs.items():
                if pc != gc:
                    continue
                inter = len(gpts & ppts)
                union = len(ppts) + len(gpts) - inter - len(ppts & gvoid)
                iou = inter / union if union else 0.0
                if iou > 0.5:
                    s = stats.setdefault(gc, [0, 0, 0, 0.0])
                    s[0] += 1
                    s[3] += iou
                    matched_p.add(pk)
                    matched_g.add(gk)
        for gk, (gc, gcrowd, _) in gsegs.items():
            if not gcrowd and gk not in matched_g:
                stats.setdefault(gc, [0, 0, 0, 0.0])[2] += 1
        for pk, (pc, _, ppts) in psegs.items():
            if pk in matched_p:
                continue
            ignored = len(ppts & gvoid) + len(ppts & crowd_of.get(pc, set()))
            if ignored / len(ppts) > 0.5:
                continue
            stats.setdefault(pc, [0, 0, 0, 0.0])[1] += 1
    pqs = []
    for tp, fp, fn, iou in stats.values():
        if tp + fp + fn:
            pqs.append(iou / (tp + 0.5 * fp + 0.5 * fn))
    tot = [sum(s[i] for s in stats.values()) for i in range(4)]
    return (sum(pqs) / len(pqs) if pqs else 1.0), tot[0], tot[1], tot[2], tot[3]
