"""The small PQ of tests/panoptic/reference.py (used for the oracle-all PQ-100 tests) agrees with panopticapi."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st, HealthCheck
from PIL import Image

import panoptic_helpers as H
import panoptic_reference as ref

from panopticapi.evaluation import pq_compute_single_core


def write_coco(pan, n, cfg, folder, name):
    """One image of a [N,1,H,W] id map as a COCO panoptic PNG + segments_info (void -> 0)."""
    segs, _ = ref.segments(pan, cfg, n)
    h, w = pan.shape[-2:]
    ids = np.zeros((h, w), np.uint32)
    info = []
    for i, (_, (cls, crowd, pts)) in enumerate(sorted(segs.items()), start=1):
        for y, x in pts:
            ids[y, x] = i
        info.append({"id": i, "category_id": cls + 1, "iscrowd": int(crowd), "area": len(pts)})
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(folder / name)
    return {"image_id": f"{n}", "file_name": name, "segments_info": info}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pan=H.panoptic_maps(max_n=2, max_side=14), seed=st.integers(0, 2 ** 31))
def test_small_pq_matches_panopticapi(tmp_path_factory, pan, seed):
    cfg = dict(H.CFG)
    # a prediction: the truth with random rectangles of its own ids, void and new instances painted over
    rng = np.random.default_rng(seed)
    pred = pan.copy()
    n_img, _, h, w = pan.shape
    for n in range(n_img):
        values = list(np.unique(pan[n])) + [255 * 1000, 11 * 1000 + 77, 13 * 1000 + 5]
        for _ in range(rng.integers(0, 5)):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = y0 + rng.integers(1, h + 1), x0 + rng.integers(1, w + 1)
            pred[n, 0, y0:y1, x0:x1] = values[rng.integers(len(values))]
    folder = tmp_path_factory.mktemp("pq")
    (folder / "gt").mkdir()
    (folder / "pred").mkdir()
    pairs = [(write_coco(pan, n, cfg, folder / "gt", f"{n}.png"), write_coco(pred, n, cfg, folder / "pred", f"{n}.png"))
             for n in range(pan.shape[0])]
    categories = {c + 1: {"id": c + 1, "isthing": int(c in H.THINGS), "name": str(c)} for c in range(19)}
    stat = pq_compute_single_core(0, pairs, str(folder / "gt"), str(folder / "pred"), categories)
    pq, tp, fp, fn, iou = ref.panoptic_quality(pan, pred, cfg)
    cats = list(stat.pq_per_cat.values())
    assert (tp, fp, fn) == (sum(c.tp for c in cats), sum(c.fp for c in cats), sum(c.fn for c in cats))
    np.testing.assert_allclose(iou, sum(c.iou for c in cats), rtol=1e-12)
    if any(c.tp + c.fp + c.fn for c in cats):  # panopticapi divides by zero otherwise
        results, _ = stat.pq_average(categories, isthing=None)
        np.testing.assert_allclose(pq, results["pq"], rtol=1e-12)
    else:
        assert pq == 1.0 and tp == fp == fn == 0
