"""Loop-based reference of the CenterNet OM, written from the math (docs/centernet.md), one image at a time.

Plain Python / numpy, float64 unless stated; a loop over objects, over the
Gaussian window cells and over detections. Conventions as in the spec: map
channels are (y, x) / (height, width), boxes (x1, y1, x2, y2) in input pixels,
sizes and offsets in output cells.
"""
import math

import numpy as np

DEFAULTS = dict(num_classes=80, output_stride=4, min_overlap=0.7, focal_alpha=2.0, focal_beta=4.0, heat_weight=1.0,
                size_weight=0.1, offset_weight=1.0, nms_kernel=3, top_k=100)


def radius_published(height, width, min_overlap=0.7):
    """CornerNet's gaussian_radius as published (CornerNet #110)."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def radius_corrected(height, width, min_overlap=0.7):
    """The same cases with the roots of their quadratics (-b ± sqrt(b² - 4ac)) / 2a, the smaller positive one."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 - math.sqrt(b1 ** 2 - 4 * a1 * c1)) / (2 * a1)
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 - math.sqrt(b2 ** 2 - 4 * a2 * c2)) / (2 * a2)
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / (2 * a3)
    return min(r1, r2, r3)


def objects(boxes, classes, h, w, cfg=DEFAULTS, radius_fn=radius_published):
    """Per slot: None (invalid) or a dict of the object's targets. boxes [M, 4], classes [M] (numpy)."""
    out = []
    s = float(np.float32(cfg["output_stride"]))
    for box, cls in zip(np.asarray(boxes, dtype=np.float32), np.asarray(classes)):
        if not (0 <= int(cls) < cfg["num_classes"]) or not np.all(np.isfinite(box)):
            out.append(None)
            continue
        b = box / np.float32(s)
        x1, x2 = (min(max(float(v), 0.0), float(w)) for v in (b[0], b[2]))
        y1, y2 = (min(max(float(v), 0.0), float(h)) for v in (b[1], b[3]))
        x1, x2, y1, y2 = (np.float32(v) for v in (x1, x2, y1, y2))
        if not (x2 > x1 and y2 > y1):
            out.append(None)
            continue
        bh, bw = np.float32(y2 - y1), np.float32(x2 - x1)
        cy, cx = np.float32((y1 + y2) * np.float32(0.5)), np.float32((x1 + x2) * np.float32(0.5))
        iy, ix = min(int(math.floor(cy)), h - 1), min(int(math.floor(cx)), w - 1)
        radius = max(0, int(radius_fn(math.ceil(bh), math.ceil(bw), cfg["min_overlap"])))
        out.append(dict(cls=int(cls), size=(float(bh), float(bw)), center=(float(cy), float(cx)), cell=(iy, ix),
                        offset=(float(np.float32(cy - np.float32(iy))), float(np.float32(cx - np.float32(ix)))),
                        index=iy * w + ix, radius=radius))
    return out


def heat_target(objs, h, w, cfg=DEFAULTS):
    """[C, h, w]: per class, max over objects of the Gaussian in its (2r+1)² window (cells inside the grid)."""
    heat = np.zeros((cfg["num_classes"], h, w), dtype=np.float64)
    for o in objs:
        if o is None:
            continue
        r = o["radius"]
        sigma = (2 * r + 1) / 6.0
        iy, ix = o["cell"]
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                y, x = iy + dy, ix + dx
                if 0 <= y < h and 0 <= x < w:
                    g = math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
                    heat[o["cls"], y, x] = max(heat[o["cls"], y, x], g)
    return heat.astype(np.float32)


def targets(boxes, classes, h, w, cfg=DEFAULTS, radius_fn=radius_published):
    """Targets of one image, shaped like the targets entrypoint's outputs for that image."""
    objs = objects(boxes, classes, h, w, cfg, radius_fn)
    m = len(objs)
    t = dict(heat_truth=heat_target(objs, h, w, cfg), size_truth=np.zeros((m, 2), np.float32),
             offset_truth=np.zeros((m, 2), np.float32), index_truth=np.zeros(m, np.int64),
             mask_truth=np.zeros(m, np.float32), radius_truth=np.zeros(m, np.int64), valid_truth=np.zeros(m, bool),
             size_map_truth=np.zeros((2, h, w), np.float32), offset_map_truth=np.zeros((2, h, w), np.float32))
    for i, o in enumerate(objs):
        if o is None:
            continue
        t["size_truth"][i] = o["size"]
        t["offset_truth"][i] = o["offset"]
        t["index_truth"][i] = o["index"]
        t["mask_truth"][i] = 1.0
        t["radius_truth"][i] = o["radius"]
        t["valid_truth"][i] = True
        iy, ix = o["cell"]
        t["size_map_truth"][:, iy, ix] = o["size"]  # later objects overwrite earlier ones on a shared cell
        t["offset_map_truth"][:, iy, ix] = o["offset"]
    return t


def focal_loss(prob, gt, alpha=2.0, beta=4.0):
    """Penalty-reduced focal loss over a whole batch (prob clamped to [1e-4, 1 - 1e-4]), / max(#gt==1, 1)."""
    p = np.clip(np.asarray(prob, np.float64), 1e-4, 1 - 1e-4).ravel()
    g = np.asarray(gt, np.float64).ravel()
    total, num_pos = 0.0, 0
    for pi, gi in zip(p, g):
        if gi == 1.0:
            total += math.log(pi) * (1 - pi) ** alpha
            num_pos += 1
        else:
            total += (1 - gi) ** beta * pi ** alpha * math.log(1 - pi)
    return -total / max(num_pos, 1)


def mse_loss(prob, gt):
    p = np.clip(np.asarray(prob, np.float64), 1e-4, 1 - 1e-4)
    return float(np.mean((p - np.asarray(gt, np.float64)) ** 2))


def reg_l1(maps, objs_per_image, key):
    """Masked L1 of maps [N, 2, h, w] read at each valid object's center cell against its target, / (2 #objects + 1e-4)."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            iy, ix = o["cell"]
            for ch in range(2):
                total += abs(float(maps[n][ch][iy][ix]) - o[key][ch])
                count += 1
    return total / (count + 1e-4)


def reg_l1_class(class_maps, objs_per_image, key):
    """reg_l1 with class-specific maps [N, C, 2, h, w] read in each object's class."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            iy, ix = o["cell"]
            for ch in range(2):
                total += abs(float(class_maps[n][o["cls"]][ch][iy][ix]) - o[key][ch])
                count += 1
    return total / (count + 1e-4)


def decode(heat_logits, size, offset, cfg=DEFAULTS, class_size=None):
    """One image: heat_logits [C, h, w], size / offset [2, h, w] (or class_size [C, 2, h, w]) → list of
    (score, class, (x1, y1, x2, y2)) of the top K peaks, best first (ties: lower flat index first)."""
    heat = 1.0 / (1.0 + np.exp(-np.asarray(heat_logits, np.float64)))
    c, h, w = heat.shape
    r = cfg["nms_kernel"] // 2
    padded = np.full((c, h + 2 * r, w + 2 * r), -np.inf)
    padded[:, r:r + h, r:r + w] = heat
    hmax = np.full_like(heat, -np.inf)
    for dy in range(-r, r + 1):  # loop over the window offsets
        for dx in range(-r, r + 1):
            hmax = np.maximum(hmax, padded[:, r + dy:r + dy + h, r + dx:r + dx + w])
    scores = np.where(hmax == heat, heat, 0.0).ravel()
    order = np.argsort(-scores, kind="stable")[:min(cfg["top_k"], scores.size)]
    out, s = [], cfg["output_stride"]
    for flat in order:
        cls, cell = divmod(int(flat), h * w)
        y, x = divmod(cell, w)
        sh, sw = (class_size[cls, :, y, x] if class_size is not None else size[:, y, x])
        cy, cx = y + float(offset[0, y, x]), x + float(offset[1, y, x])
        out.append((float(scores[flat]), cls, ((cx - sw / 2) * s, (cy - sh / 2) * s, (cx + sw / 2) * s, (cy + sh / 2) * s)))
    return out


# ---------------------------------------------------------------- published switches (--dense_wh, --norm_wh,
# --reg_loss sl1, --not_reg_offset): tests/centernet/test_centernet_switches.py

from fractions import Fraction  # noqa: E402 (appended section)

def dense_size_target(objs, h, w):
    """[2, h, w]: every cell of an object's (2r+1)² window (inside the grid) takes the size of the object whose
    Gaussian exp(-d² / 2σ²) is largest there, over all objects of the image whatever their class; on equal
    Gaussians the later slot wins; cells outside every window are 0. Compared exactly, through the exponent
    d² / 2σ² = 18 d² / (2r + 1)² as a fraction (smaller is larger)."""
    out = np.zeros((2, h, w), np.float32)
    best = {}
    for o in objs:
        if o is None:
            continue
        r = o["radius"]
        iy, ix = o["cell"]
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                y, x = iy + dy, ix + dx
                if 0 <= y < h and 0 <= x < w:
                    e = Fraction(18 * (dy * dy + dx * dx), (2 * r + 1) ** 2)
                    if (y, x) not in best or e <= best[y, x]:
                        best[y, x] = e
                        out[:, y, x] = o["size"]
    return out


def dense_l1(size_maps, dense_targets, heat):
    """Σ_{n,ch,y,x} m |size - target| / (Σ_{n,ch,y,x} m + 1e-4), m = max over classes of the heat-map target
    (the same weight for both channels)."""
    total, weight = 0.0, 0.0
    for n in range(len(size_maps)):
        for y in range(heat.shape[2]):
            for x in range(heat.shape[3]):
                m = max(float(v) for v in heat[n, :, y, x])
                for ch in range(2):
                    total += m * abs(float(size_maps[n][ch][y][x]) - float(dense_targets[n][ch][y][x]))
                    weight += m
    return total / (weight + 1e-4)


def reg_norm_l1(maps, objs_per_image, key):
    """Σ over valid objects and channels of |map / (target + 1e-4) - 1| at the center cell, / (2 #objects + 1e-4)."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            iy, ix = o["cell"]
            for ch in range(2):
                total += abs(float(maps[n][ch][iy][ix]) / (o[key][ch] + 1e-4) - 1.0)
                count += 1
    return total / (count + 1e-4)


def smooth_l1(x):
    x = abs(x)
    return 0.5 * x * x if x < 1.0 else x - 0.5


def reg_smooth_l1(maps, objs_per_image, key):
    """Σ over valid objects and channels of smooth L1 (beta 1) at the center cell, / (#objects + 1e-4)."""
    total, count = 0.0, 0
    for n, objs in enumerate(objs_per_image):
        for o in objs:
            if o is None:
                continue
            iy, ix = o["cell"]
            total += sum(smooth_l1(float(maps[n][ch][iy][ix]) - o[key][ch]) for ch in range(2))
            count += 1
    return total / (count + 1e-4)
