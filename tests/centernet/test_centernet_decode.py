"""Decoding against the loop reference; oracle-all recovers the ground truth (COCOeval AP 100); collisions."""
import contextlib
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import centernet_helpers as H
import centernet_reference as ref


def check_decode(got, preds, n, cfg, class_specific=False):
    """Same detections as the reference; within equal float32 scores the order is free (the reference ranks
    float64 scores), so both lists are compared sorted by (score, class, box)."""
    for i in range(n):
        want = ref.decode(preds["heatmap"][i].numpy(), preds["size"][i].numpy(), preds["offset"][i].numpy(), cfg,
                          preds["class_size"][i].numpy() if class_specific else None)
        assert got["scores_pred"].shape[1] == len(want)
        scores = np.array([s for s, _, _ in want])
        np.testing.assert_allclose(np.sort(got["scores_pred"][i].numpy()), np.sort(scores), rtol=1e-6, atol=1e-7)
        assert bool((got["scores_pred"][i][1:] <= got["scores_pred"][i][:-1]).all()), "best first"
        mine = [(s, int(c), np.array(b)) for s, c, b in zip(got["scores_pred"][i].tolist(),
                got["classes_pred"][i].tolist(), got["boxes_pred"][i].tolist()) if s > 0]
        theirs = [(s, c, np.array(b)) for s, c, b in want if s > 0]  # zero scores: unspecified order
        assert len(mine) == len(theirs)
        for s, c, b in mine:  # each detection matches one reference detection (score, class, box)
            j = next(j for j, (s2, c2, b2) in enumerate(theirs) if c2 == c and abs(s2 - s) <= 1e-6 * max(s, 1e-3)
                     and np.allclose(b2, b, rtol=1e-5, atol=1e-4))
            theirs.pop(j)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 5, 100]),
       st.sampled_from([3, 5]))
def test_decode_matches_reference(n, c, h, w, top_k, kernel):
    preds = H.predictions(n, c, h, w, seed=n * 1000 + h * 13 + w)
    cfg = dict(ref.DEFAULTS, num_classes=c, top_k=top_k, nms_kernel=kernel)
    for variant in ["base", "class_specific_size"]:
        infer = H.entry(variant, "infer", num_classes=c, top_k=top_k, nms_kernel=kernel)
        got = H.call(infer, **preds)
        assert got["boxes_pred"].shape == (n, min(top_k, c * h * w), 4)
        check_decode(got, preds, n, cfg, variant == "class_specific_size")


def test_decode_full_size_scripted():
    """80 classes on a 128 x 128 grid, batch 2, K = 100, TorchScript."""
    preds = H.predictions(2, 80, 128, 128, seed=1)
    got = H.call(torch.jit.script(H.entry("base", "infer")), **preds)
    assert got["boxes_pred"].shape == (2, 100, 4) and got["classes_pred"].dtype == torch.int64
    check_decode(got, preds, 2, ref.DEFAULTS)


# ---------------------------------------------------------------- oracle-all and COCOeval

def scene(rng, n_obj, num_classes, img=512, s=4, distinct_cells=True, same_class_gap=2):
    """Boxes inside the image; same-class center cells >= same_class_gap apart (Chebyshev) and, with
    distinct_cells, no two centers (any class) in one output cell."""
    boxes, classes, cells = [], [], []
    for _ in range(20 * n_obj):
        if len(boxes) == n_obj:
            break
        x1, y1 = rng.uniform(0, img - 4, 2)
        x2 = min(img, x1 + rng.choice([rng.uniform(1, 12), rng.uniform(4, 250)]))
        y2 = min(img, y1 + rng.choice([rng.uniform(1, 12), rng.uniform(4, 250)]))
        c = int(rng.integers(0, num_classes))
        b = np.float32([x1, y1, x2, y2]) / np.float32(s)
        cell = (int(np.floor(np.float32((b[1] + b[3]) * np.float32(0.5)))),
                int(np.floor(np.float32((b[0] + b[2]) * np.float32(0.5)))))
        clash = False
        for (cy, cx), cc in zip(cells, classes):
            d = max(abs(cy - cell[0]), abs(cx - cell[1]))
            if (cc == c and d < same_class_gap) or (distinct_cells and d == 0):
                clash = True
        if not clash:
            boxes.append([x1, y1, x2, y2])
            classes.append(c)
            cells.append(cell)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64)


def pad(scenes):
    m = max(1, max(len(b) for b, _ in scenes))
    boxes = torch.zeros(len(scenes), m, 4)
    classes = torch.full((len(scenes), m), -1, dtype=torch.long)
    for i, (b, c) in enumerate(scenes):
        boxes[i, :len(b)] = torch.from_numpy(b)
        classes[i, :len(c)] = torch.from_numpy(c)
    return boxes, classes


def oracle_decode(boxes, classes, num_classes, top_k=100, h=128, w=128):
    infer = H.entry("oracle_all", "infer", num_classes=num_classes, top_k=top_k)
    return H.call(infer, grid=[h, w], boxes=boxes, classes=classes)


def coco_ap(scenes, det, num_classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, results = [], [], []
    for i, (b, c) in enumerate(scenes):
        images.append({"id": i, "width": 512, "height": 512})
        for box, cls in zip(b.tolist(), c.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cls, "iscrowd": 0,
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                         "area": (box[2] - box[0]) * (box[3] - box[1])})
        for box, score, cls in zip(det["boxes_pred"][i].tolist(), det["scores_pred"][i].tolist(),
                                   det["classes_pred"][i].tolist()):
            results.append({"image_id": i, "category_id": cls, "score": score,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": k} for k in range(num_classes)]}
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0]


def test_oracle_all_recovers_ground_truth_ap_100():
    rng = np.random.default_rng(0)
    scenes = [scene(rng, n_obj, 5) for n_obj in (1, 4, 17, 40, 100, 100)]
    boxes, classes = pad(scenes)
    det = oracle_decode(boxes, classes, 5)
    assert coco_ap(scenes, det, 5) == pytest.approx(1.0)


def matched(det, boxes, classes, i, tol=1e-3):
    """Ground-truth slots of image i recovered exactly (same class, every coordinate within tol pixels)."""
    got = det["boxes_pred"][i][det["scores_pred"][i] == 1.0]
    cls = det["classes_pred"][i][det["scores_pred"][i] == 1.0]
    hits = set()
    for j in range(boxes.shape[1]):
        if classes[i, j] < 0:
            continue
        close = ((got - boxes[i, j]).abs().max(1)[0] < tol) & (cls == classes[i, j])
        if bool(close.any()):
            hits.add(j)
    return hits


def test_adjacent_same_class_centers_survive_nms():
    """Two objects of one class in neighbouring cells: both centers are 1, 3x3 NMS keeps ties, both decode."""
    boxes = torch.tensor([[[40.0, 40.0, 80.0, 80.0], [44.0, 40.0, 84.0, 80.0]]])  # centers in cells (15, 15), (15, 16)
    classes = torch.tensor([[0, 0]])
    det = oracle_decode(boxes, classes, 2, h=64, w=64)
    assert matched(det, boxes, classes, 0) == {0, 1}


def test_collisions_counted():
    """Random scenes with no spacing rule: exactly one object per occupied center cell is recovered (the last
    slot; the size / offset maps hold one value per cell), and at most K."""
    rng = np.random.default_rng(1)
    scenes = [scene(rng, 60, 3, distinct_cells=False, same_class_gap=0) for _ in range(6)]
    # three boxes on one center (two of class 0, one of class 1): only the last is recovered
    scenes.append((np.float32([[100, 100, 140, 160], [90, 90, 150, 170], [110, 110, 130, 150]]), np.int64([0, 0, 1])))
    boxes, classes = pad(scenes)
    det = oracle_decode(boxes, classes, 3)
    total = lost = 0
    for i, (b, _) in enumerate(scenes):
        t = H.call(H.entry("base", "targets", num_classes=3), grid=[128, 128], boxes=boxes[i:i + 1],
                   classes=classes[i:i + 1])
        valid = t["valid_truth"][0].tolist()
        idx = [cell for cell, ok in zip(t["index_truth"][0].tolist(), valid) if ok]
        last = {cell: j for j, cell in enumerate(t["index_truth"][0].tolist()) if valid[j]}  # last slot per cell
        assert matched(det, boxes, classes, i) == set(last.values())
        total += len(idx)
        lost += len(idx) - len(last)
    assert lost >= 2  # the stacked image alone loses 2


def test_more_than_k_objects():
    rng = np.random.default_rng(2)
    scenes = [scene(rng, 150, 4)]
    boxes, classes = pad(scenes)
    assert len(scenes[0][0]) == 150
    det = oracle_decode(boxes, classes, 4, top_k=100)
    assert det["boxes_pred"].shape == (1, 100, 4) and bool((det["scores_pred"] == 1.0).all())
    assert len(matched(det, boxes, classes, 0)) == 100


@settings(max_examples=40, deadline=None)
@given(H.annotations(num_classes=3, max_m=12), st.sampled_from([1, 3, 100]))
def test_oracle_all_on_generated_box_sets(sample, top_k):
    """Hypothesis box sets (empty images, tiny, border-cut and outside boxes, stacked centers, more than K
    objects): every (class, center cell) of a valid object is a peak of score 1 and decodes to the clipped box
    of the last valid object on that cell; min(K, #peaks) detections have score 1, the others 0."""
    boxes, classes, h, w = sample
    n = boxes.shape[0]
    det = oracle_decode(boxes, classes, 3, top_k=top_k, h=h, w=w)
    t = H.call(H.entry("base", "targets", num_classes=3), grid=[h, w], boxes=boxes, classes=classes)
    clipped = torch.minimum(boxes.clamp(min=0), torch.tensor([4.0 * w, 4.0 * h, 4.0 * w, 4.0 * h]))
    for i in range(n):
        last = {}
        for j in range(boxes.shape[1]):
            if bool(t["valid_truth"][i, j]):
                last[int(t["index_truth"][i, j])] = j
        peaks = {}
        for j in range(boxes.shape[1]):
            if bool(t["valid_truth"][i, j]):
                cell = int(t["index_truth"][i, j])
                peaks[(int(classes[i, j]), cell)] = clipped[i, last[cell]]
        scores = det["scores_pred"][i]
        k = min(top_k, 3 * h * w)
        assert bool(((scores == 1.0) | (scores == 0.0)).all())
        assert int((scores == 1.0).sum()) == min(k, len(peaks))
        for d in range(k):
            if float(scores[d]) == 1.0:
                cls = int(det["classes_pred"][i, d])
                assert any(c == cls and torch.allclose(det["boxes_pred"][i, d], box, atol=2e-3)
                           for (c, _), box in peaks.items()), (i, d)
