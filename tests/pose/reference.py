"""Loop-based reference of the pose OM (CenterNet multi_pose), written from the math (docs/pose.md).

One image at a time, a loop over people, joints, window cells and peaks;
float64 except where the spec's float32 rounding is the definition (joint
coordinates / stride). The person part (boxes -> center, size, offset,
radius, center heat map) is the CenterNet reference (tests/centernet/reference.py),
since the pose OM takes it from the same library.
"""
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

if "centernet_reference" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "centernet_reference", Path(__file__).resolve().parents[1] / "centernet" / "reference.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["centernet_reference"] = _mod
    _spec.loader.exec_module(_mod)
cn = sys.modules["centernet_reference"]

DEFAULTS = dict(cn.DEFAULTS, num_classes=1, num_joints=17, joint_weight=1.0, joint_heat_weight=1.0,
                joint_threshold=0.1, joint_snap_ratio=0.3)


def people(boxes, classes, keypoints, h, w, cfg=DEFAULTS):
    """Per slot: None or the CenterNet object dict plus ``mask`` (some joint has v > 0) and ``joints``: per joint
    None (unlabelled / outside the grid) or dict(point=(y, x), cell=(iy, ix)) in output cells."""
    objs = cn.objects(boxes, classes, h, w, cfg)
    s = np.float32(cfg["output_stride"])
    for o, kp in zip(objs, np.asarray(keypoints, np.float32)):
        if o is None:
            continue
        o["mask"] = any(float(v) > 0 for v in kp[:, 2])
        o["joints"] = []
        for x, y, v in kp:
            py, px = float(np.float32(y) / s), float(np.float32(x) / s)
            ok = v > 0 and all(math.isfinite(float(t)) for t in (x, y, v)) and 0 <= py < h and 0 <= px < w
            o["joints"].append(dict(point=(py, px), cell=(math.floor(py), math.floor(px))) if ok else None)
    return objs


def targets(boxes, classes, keypoints, h, w, cfg=DEFAULTS):
    """Targets of one image, shaped like the targets entrypoint's outputs (without the batch dim)."""
    objs = people(boxes, classes, keypoints, h, w, cfg)
    m, nj = len(objs), cfg["num_joints"]
    t = cn.targets(boxes, classes, h, w, cfg)
    t.update(joint_rel_truth=np.zeros((m, nj, 2), np.float32), joint_mask_truth=np.zeros((m, nj), np.float32),
             joint_valid_truth=np.zeros((m, nj), bool), joint_index_truth=np.zeros(m * nj, np.int64),
             joint_sub_offset_truth=np.zeros((m * nj, 2), np.float32),
             joint_offset_map_truth=np.zeros((2 * nj, h, w), np.float32),
             joint_sub_offset_map_truth=np.zeros((2, h, w), np.float32))
    marks = []  # (joint type, cell, radius) of every labelled joint, for the joint heat maps
    for i, o in enumerate(objs):
        if o is None:
            continue
        t["mask_truth"][i] = 1.0 if o["mask"] else 0.0
        cy, cx = o["cell"]
        for j, jt in enumerate(o["joints"]):
            if jt is None:
                continue
            (py, px), (iy, ix) = jt["point"], jt["cell"]
            t["joint_rel_truth"][i, j] = (py - cy, px - cx)
            t["joint_mask_truth"][i, j] = 1.0
            t["joint_valid_truth"][i, j] = True
            t["joint_index_truth"][i * nj + j] = iy * w + ix
            t["joint_sub_offset_truth"][i * nj + j] = (py - iy, px - ix)
            t["joint_sub_offset_map_truth"][:, iy, ix] = (py - iy, px - ix)  # later joints win a shared cell
            marks.append(dict(cls=j, cell=(iy, ix), radius=o["radius"]))
        for j in range(nj):  # every valid person writes its joint offsets (0 where unlabelled) at its center
            t["joint_offset_map_truth"][2 * j:2 * j + 2, cy, cx] = t["joint_rel_truth"][i, j]
    t["joint_heat_truth"] = cn.heat_target(marks, h, w, dict(cfg, num_classes=nj))
    return t


def dense_targets(boxes, classes, keypoints, h, w, cfg=DEFAULTS):
    """(--dense_hp) offsets [2J, h, w] from each cell to joint j of the person whose center Gaussian is largest there
    among the people with joint j labelled (exact comparison of d² / (2r+1)²; later slot wins ties), and the weight
    [2J, h, w]: the max of those Gaussians."""
    from fractions import Fraction

    objs = people(boxes, classes, keypoints, h, w, cfg)
    nj = cfg["num_joints"]
    off = np.zeros((2 * nj, h, w), np.float64)
    weight = np.zeros((2 * nj, h, w), np.float64)
    for j in range(nj):
        for y in range(h):
            for x in range(w):
                best, key = None, None
                for o in objs:
                    if o is None or o["joints"][j] is None:
                        continue
                    r, (cy, cx) = o["radius"], o["cell"]
                    if abs(y - cy) > r or abs(x - cx) > r:
                        continue
                    k = Fraction((y - cy) ** 2 + (x - cx) ** 2, (2 * r + 1) ** 2)
                    sigma = (2 * r + 1) / 6.0
                    g = math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma * sigma))
                    weight[2 * j:2 * j + 2, y, x] = max(weight[2 * j, y, x], g)
                    if key is None or k <= key:
                        best, key = o, k
                if best is not None:
                    py, px = best["joints"][j]["point"]
                    off[2 * j:2 * j + 2, y, x] = (py - y, px - x)
    return off, weight


def joint_l1(joint_maps, objs_per_image):
    """Σ over valid people and labelled joints and both coordinates of |map at the center - (joint - center cell)|,
    / (#entries + 1e-4) (joint_maps [N, 2J, h, w])."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            cy, cx = o["cell"]
            for j, jt in enumerate(o["joints"]):
                if jt is None:
                    continue
                for c, want in enumerate((jt["point"][0] - cy, jt["point"][1] - cx)):
                    total += abs(float(joint_maps[n][2 * j + c][cy][cx]) - want)
                    count += 1
    return total / (count + 1e-4)


def sub_offset_l1(maps, objs_per_image):
    """Σ over labelled joints and both coordinates of |map at the joint cell - (joint - joint cell)|, / (#entries + 1e-4)."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            for jt in o["joints"]:
                if jt is None:
                    continue
                iy, ix = jt["cell"]
                for c in range(2):
                    total += abs(float(maps[n][c][iy][ix]) - (jt["point"][c] - jt["cell"][c]))
                    count += 1
    return total / (count + 1e-4)


def masked_reg_l1(maps, objs_per_image, key):
    """reg_l1 of the CenterNet reference over the people with some labelled joint (published reg_mask)."""
    kept = [[o if o is not None and o["mask"] else None for o in objs] for objs in objs_per_image]
    return cn.reg_l1(maps, kept, key)


def dense_l1(maps, off, weight):
    """Σ W |map - D| / (Σ W + 1e-4) over one batch (lists of [2J, h, w])."""
    total, wsum = 0.0, 0.0
    for n in range(len(maps)):
        for idx in np.ndindex(off[n].shape):
            total += weight[n][idx] * abs(float(maps[n][idx]) - off[n][idx])
            wsum += weight[n][idx]
    return total / (wsum + 1e-4)


def _peaks(prob, kernel):
    """[C, h, w] -> scores where the value is the max of its kernel x kernel window (a loop over window cells)."""
    c, h, w = prob.shape
    r = kernel // 2
    out = np.zeros_like(prob)
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                window = prob[ch, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
                if prob[ch, y, x] == window.max():
                    out[ch, y, x] = prob[ch, y, x]
    return out


def decode(pred, cfg=DEFAULTS, *, joint_heatmap=True, sub_offset=True):
    """One image: pred maps without the batch dim -> list of (score, box (x1, y1, x2, y2), joints [(x, y)] * J) in
    input pixels for the top K people, best first. The published rule, one person and joint at a time: joint =
    center cell + offset; among the top K peaks of its joint heat map scoring > threshold, the nearest (Euclidean;
    first in score order on ties) replaces it when inside the box (borders included) and at most
    ratio * max(box h, box w) away."""
    s, k_max, nj = cfg["output_stride"], cfg["top_k"], cfg["num_joints"]
    heat = 1.0 / (1.0 + np.exp(-np.asarray(pred["heatmap"], np.float64)))
    _, h, w = heat.shape
    scores = _peaks(heat, cfg["nms_kernel"]).ravel()
    order = np.argsort(-scores, kind="stable")[:min(k_max, scores.size)]
    peaks = []
    if joint_heatmap:
        jheat = 1.0 / (1.0 + np.exp(-np.asarray(pred["joint_heatmap"], np.float64)))
        jpeaks = _peaks(jheat, cfg["nms_kernel"])
        for j in range(nj):
            flat = jpeaks[j].ravel()
            top = np.argsort(-flat, kind="stable")[:min(k_max, flat.size)]
            found = []
            for cell in top:
                y, x = divmod(int(cell), w)
                oy, ox = (float(pred["joint_sub_offset"][0, y, x]), float(pred["joint_sub_offset"][1, y, x])) \
                    if sub_offset else (0.5, 0.5)
                found.append((float(flat[cell]), y + oy, x + ox))
            peaks.append(found)
    out = []
    for cell in order:
        y, x = divmod(int(cell), w)
        cy, cx = y + float(pred["offset"][0, y, x]), x + float(pred["offset"][1, y, x])
        sh, sw = float(pred["size"][0, y, x]), float(pred["size"][1, y, x])
        x1, y1, x2, y2 = cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2
        joints = []
        for j in range(nj):
            jy = y + float(pred["joint_offset"][2 * j, y, x])
            jx = x + float(pred["joint_offset"][2 * j + 1, y, x])
            if joint_heatmap:
                best, best_d = None, math.inf
                for score, py, px in peaks[j]:
                    if score <= cfg["joint_threshold"]:
                        continue
                    d = math.hypot(jy - py, jx - px)
                    if d < best_d:
                        best, best_d = (py, px), d
                if best is not None:
                    py, px = best
                    inside = x1 <= px <= x2 and y1 <= py <= y2
                    if inside and best_d <= cfg["joint_snap_ratio"] * max(y2 - y1, x2 - x1):
                        jy, jx = py, px
            joints.append((jx * s, jy * s))
        out.append((float(scores[cell]), (x1 * s, y1 * s, x2 * s, y2 * s), joints))
    return out
