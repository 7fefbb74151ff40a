"""runtime.evaluation: PQ against panopticapi and torchmetrics, mIoU, mask AP."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runtime.evaluation import InstanceAP, MeanIoU, PanopticQuality

DIV = 1000
IGN = 255
VOID = IGN * DIV
K = 5
THINGS = (2, 3, 4)


# --------------------------------------------------------------------------- helpers


def random_maps(seed: int, n: int, h: int, w: int, noise: float, crowd: bool, pred_void: bool,
                rects: int = 7):
    """Ground truth from painted rectangles; prediction = perturbed ground truth."""
    rng = np.random.default_rng(seed)

    def paint(base, count, allow_crowd, allow_void):
        out = base.copy()
        for _ in range(count):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = y0 + rng.integers(1, h // 2 + 2), x0 + rng.integers(1, w // 2 + 2)
            r = rng.random()
            if allow_void and r < 0.12:
                v = VOID
            else:
                c = int(rng.integers(0, K))
                if c in THINGS:
                    lo = 0 if allow_crowd and rng.random() < 0.25 else 1
                    v = c * DIV + int(rng.integers(lo, 4))
                else:
                    v = c * DIV
            out[y0:y1, x0:x1] = v
        return out

    truth = np.zeros((n, h, w), np.int64)
    pred = np.zeros((n, h, w), np.int64)
    for i in range(n):
        truth[i] = paint(np.full((h, w), int(rng.integers(0, 2)) * DIV), rects, crowd, True)
        p = paint(truth[i], int(rng.integers(0, 3)), False, pred_void)
        # per-pixel noise: random ids from the ones in use (+ void if allowed)
        flip = rng.random((h, w)) < noise
        if not pred_void:
            flip |= p == VOID
        choices = [v for v in np.unique(np.concatenate([truth[i].ravel(), p.ravel()]))
                   if v != VOID and not (v // DIV in THINGS and v % DIV == 0)]
        if pred_void:
            choices.append(VOID)
        p[flip] = rng.choice(np.array(choices), size=int(flip.sum()))
        pred[i] = p
    return torch.from_numpy(pred)[:, None], torch.from_numpy(truth)[:, None]


def _to_coco_png(ids: np.ndarray, path, is_gt: bool):
    """Our ids -> COCO panoptic PNG (id = R + 256 G + 256^2 B) + segments_info."""
    coco = np.where(ids == VOID, 0, ids + 1).astype(np.uint32)
    rgb = np.stack([coco % 256, coco // 256 % 256, coco // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    segs = []
    for v, area in zip(*np.unique(ids, return_counts=True)):
        if v == VOID:
            continue
        c, inst = int(v // DIV), int(v % DIV)
        s = {"id": int(v) + 1, "category_id": c}
        if is_gt:
            s.update(iscrowd=int(c in THINGS and inst == 0), area=int(area))
        segs.append(s)
    return segs


def panopticapi_reference(tmp_path, pred, truth, monkeypatch):
    """Run COCO's pq_compute on our maps; returns (averages or None, per-class PQStat)."""
    import panopticapi.evaluation as pe

    cats = [{"id": c, "name": f"c{c}", "isthing": int(c in THINGS)} for c in range(K)]
    gdir, pdir = tmp_path / "gt", tmp_path / "pred"
    gdir.mkdir(exist_ok=True)
    pdir.mkdir(exist_ok=True)
    g_anns, p_anns = [], []
    for i in range(pred.shape[0]):
        name = f"{i}.png"
        g_anns.append({"image_id": i, "file_name": name,
                       "segments_info": _to_coco_png(truth[i, 0].numpy(), gdir / name, True)})
        p_anns.append({"image_id": i, "file_name": name,
                       "segments_info": _to_coco_png(pred[i, 0].numpy(), pdir / name, False)})
    (tmp_path / "gt.json").write_text(json.dumps({"annotations": g_anns, "categories": cats}))
    (tmp_path / "pred.json").write_text(json.dumps({"annotations": p_anns}))

    stash = {}

    def single_core(matched, gt_folder, pred_folder, categories):  # no process pool: 2 shared cores
        stash["stat"] = pe.pq_compute_single_core(0, matched, gt_folder, pred_folder, categories)
        return stash["stat"]

    monkeypatch.setattr(pe, "pq_compute_multi_core", single_core)
    try:
        res = pe.pq_compute(str(tmp_path / "gt.json"), str(tmp_path / "pred.json"), str(gdir), str(pdir))
    except ZeroDivisionError:  # panopticapi divides by n = 0 when a group is empty
        res = None
    return res, stash["stat"]


def check_against_panopticapi(tmp_path, pred, truth, monkeypatch):
    m = PanopticQuality(K, THINGS, DIV, IGN)
    m.update(pred, truth)
    ours = m.compute()
    res, stat = panopticapi_reference(tmp_path, pred, truth, monkeypatch)
    for c in range(K):
        ref = stat[c]
        assert int(ours["per_class_tp"][c]) == ref.tp, c
        assert int(ours["per_class_fp"][c]) == ref.fp, c
        assert int(ours["per_class_fn"][c]) == ref.fn, c
        assert float(ours["per_class_iou_sum"][c]) == pytest.approx(ref.iou, abs=1e-12)
    if res is not None:
        for ours_suffix, ref_key in (("", "All"), ("_things", "Things"), ("_stuff", "Stuff")):
            for q in ("pq", "sq", "rq"):
                assert ours[q + ours_suffix] == pytest.approx(res[ref_key][q], abs=1e-12)
            assert ours["n" + ours_suffix] == res[ref_key]["n"]
        for c in range(K):
            for q in ("pq", "sq", "rq"):
                assert float(ours[f"per_class_{q}"][c]) == pytest.approx(res["per_class"][c][q], abs=1e-12)
    return ours


# --------------------------------------------------------------------------- PQ


def test_pq_hand_computed():
    V = VOID
    truth = torch.tensor([[0, 0, 0, 0],
                          [0, 0, 1001, 1001],
                          [V, V, 1001, 1001],
                          [1000, 1000, 1002, 1002]])
    pred = torch.tensor([[0, 0, 0, 0],
                         [0, 0, 0, 1001],
                         [0, V, 1001, 1001],
                         [1005, 1005, 2001, 2001]])
    m = PanopticQuality(3, thing_ids=[1, 2], label_divisor=DIV, ignore_label=IGN)
    m.update(pred[None, None], truth[None, None])
    r = m.compute()
    # class 0: gt area 6, pred area 8 of which 1 on void, intersection 6 -> IoU 6/7
    # class 1: 1001 vs 1001: inter 3, union 3 + 4 - 3 = 4 -> IoU 3/4; 1002 missed -> FN;
    #          1005 lies entirely on the crowd region 1000 of its class -> not FP
    # class 2: 2001 matches nothing -> FP
    assert r["per_class_tp"].tolist() == [1, 1, 0]
    assert r["per_class_fp"].tolist() == [0, 0, 1]
    assert r["per_class_fn"].tolist() == [0, 1, 0]
    pq = [6 / 7, 0.75 / 1.5, 0.0]
    assert r["per_class_pq"].tolist() == pytest.approx(pq)
    assert r["per_class_sq"].tolist() == pytest.approx([6 / 7, 0.75, 0.0])
    assert r["per_class_rq"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert r["pq"] == pytest.approx(sum(pq) / 3)
    assert r["pq_things"] == pytest.approx(0.25)
    assert r["pq_stuff"] == pytest.approx(6 / 7)
    assert (r["n"], r["n_things"], r["n_stuff"]) == (3, 2, 1)

    # the same prediction of class 2 over the class-1 crowd region is a false positive
    pred2 = pred.clone()
    pred2[3, :2] = 2005
    m.reset()
    m.update(pred2[None, None], truth[None, None])
    assert m.compute()["per_class_fp"].tolist() == [0, 0, 2]


def test_pq_perfect_and_accumulation():
    pred, truth = random_maps(3, 2, 16, 16, 0.0, crowd=True, pred_void=False)
    m = PanopticQuality(K, THINGS, DIV, IGN)
    m.update(truth.clone(), truth)
    r = m.compute()
    assert r["pq"] == pytest.approx(1.0) and r["sq"] == pytest.approx(1.0)
    assert int(r["per_class_fp"].sum()) == 0 and int(r["per_class_fn"].sum()) == 0

    # batch of 4 == two batches of 2; images never match across the batch
    pred, truth = random_maps(5, 4, 16, 16, 0.2, crowd=True, pred_void=True)
    a = PanopticQuality(K, THINGS, DIV, IGN)
    a.update(pred, truth)
    b = PanopticQuality(K, THINGS, DIV, IGN)
    b.update(pred[:2], truth[:2])
    b.update(pred[2:], truth[2:])
    for key in ("per_class_tp", "per_class_fp", "per_class_fn"):
        assert torch.equal(a.compute()[key], b.compute()[key])
    # shifting one image's ids must not create cross-image matches
    one = PanopticQuality(K, THINGS, DIV, IGN)
    one.update(torch.cat([truth[:1], truth[1:2]]), torch.cat([truth[1:2], truth[1:2]]))
    assert int(one.compute()["per_class_tp"].sum()) >= 1


def test_pq_sort_path_equals_dense_path(monkeypatch):
    import runtime.evaluation as ev

    pred, truth = random_maps(21, 3, 20, 24, 0.2, crowd=True, pred_void=True)
    dense = PanopticQuality(K, THINGS, DIV, IGN)
    dense.update(pred, truth)
    calls = []
    real_unique = torch.unique

    def counting_unique(*a, **kw):
        calls.append(1)
        return real_unique(*a, **kw)

    monkeypatch.setattr(ev, "_MAX_DENSE_BINS", 0)
    monkeypatch.setattr(ev.torch, "unique", counting_unique)
    sort = PanopticQuality(K, THINGS, DIV, IGN)
    sort.update(pred, truth)
    assert calls  # the sort-based path ran
    a, b = dense.compute(), sort.compute()
    for key in ("per_class_tp", "per_class_fp", "per_class_fn", "per_class_iou_sum"):
        assert torch.equal(a[key], b[key])
    m1, m2 = MeanIoU(K, IGN, DIV), MeanIoU(K, IGN, DIV)
    m2.update(pred, truth)
    monkeypatch.setattr(ev, "_MAX_DENSE_BINS", 1 << 24)
    m1.update(pred, truth)
    assert torch.equal(m1.compute()["confusion"], m2.compute()["confusion"])


def test_pq_rejects_unknown_class():
    m = PanopticQuality(3, [1])
    with pytest.raises(ValueError):
        m.update(torch.full((1, 1, 2, 2), 7000), torch.zeros(1, 1, 2, 2, dtype=torch.long))


def test_pq_vs_panopticapi_fixed(tmp_path, monkeypatch):
    pred, truth = random_maps(11, 3, 24, 32, 0.15, crowd=True, pred_void=True)
    truth[0, 0, 0:6, 0:8] = 2 * DIV        # crowd region of class 2
    pred[0, 0, 0:6, 0:5] = 2 * DIV + 9     # unmatched, 30/30 px on crowd: not a FP
    pred[0, 0, 5:9, 0:8] = 2 * DIV + 8     # 8/32 px on crowd: a FP
    pred[1, 0, 0:4, 0:4] = 3 * DIV + 9
    truth[1, 0, 0:4, 0:3] = 3 * DIV        # class 3 crowd under 3009 -> ignored
    ours = check_against_panopticapi(tmp_path, pred, truth, monkeypatch)
    # the fixture must exercise matches, misses, false positives and crowd
    assert int(ours["per_class_tp"].sum()) > 0
    assert int(ours["per_class_fn"].sum()) > 0
    assert int(ours["per_class_fp"].sum()) > 0
    t = truth.numpy()
    assert ((t // DIV >= 2) & (t // DIV < K) & (t % DIV == 0)).any()  # crowd present
    assert (t == VOID).any()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), noise=st.sampled_from([0.0, 0.05, 0.2, 0.45]),
       n=st.integers(1, 2), rects=st.integers(1, 9))
def test_pq_vs_panopticapi_hypothesis(tmp_path_factory, monkeypatch, seed, noise, n, rects):
    pred, truth = random_maps(seed, n, 16, 16, noise, crowd=True, pred_void=True, rects=rects)
    check_against_panopticapi(tmp_path_factory.mktemp("pq"), pred, truth, monkeypatch)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), noise=st.sampled_from([0.0, 0.1, 0.3]))
def test_pq_vs_torchmetrics(seed, noise):
    from torchmetrics.detection import PanopticQuality as TMPQ

    # torchmetrics and panopticapi agree when there is no crowd and no predicted void
    pred, truth = random_maps(seed, 2, 16, 16, noise, crowd=False, pred_void=False)
    stuffs = [c for c in range(K) if c not in THINGS]

    def pairs(x):
        x = x[:, 0]
        return torch.stack([x // DIV, x % DIV], -1)

    tm = TMPQ(things=set(THINGS), stuffs=set(stuffs), return_sq_and_rq=True, return_per_class=True)
    ref = tm(pairs(pred), pairs(truth))  # [K, 3], things first then stuffs, each sorted
    m = PanopticQuality(K, THINGS, DIV, IGN)
    m.update(pred, truth)
    r = m.compute()
    order = sorted(THINGS) + sorted(stuffs)
    for j, c in enumerate(order):
        assert float(r["per_class_pq"][c]) == pytest.approx(float(ref[j, 0]), abs=1e-6)
        assert float(r["per_class_sq"][c]) == pytest.approx(float(ref[j, 1]), abs=1e-6)
        assert float(r["per_class_rq"][c]) == pytest.approx(float(ref[j, 2]), abs=1e-6)
    tm_avg = TMPQ(things=set(THINGS), stuffs=set(stuffs), return_sq_and_rq=True)
    ref_avg = tm_avg(pairs(pred), pairs(truth))
    assert r["pq"] == pytest.approx(float(ref_avg[0]), abs=1e-6)
    assert r["sq"] == pytest.approx(float(ref_avg[1]), abs=1e-6)
    assert r["rq"] == pytest.approx(float(ref_avg[2]), abs=1e-6)


# --------------------------------------------------------------------------- mIoU


def test_miou_vs_loop():
    g = torch.Generator().manual_seed(0)
    k = 6
    truth = torch.randint(0, k, (3, 1, 20, 20), generator=g)
    truth[torch.rand(truth.shape, generator=g) < 0.1] = IGN
    pred = torch.where(torch.rand(truth.shape, generator=g) < 0.6, truth,
                       torch.randint(0, k, truth.shape, generator=g))
    pred[pred == IGN] = 0
    pred[0, 0, 0, :5] = IGN  # invalid prediction on valid pixels: a miss
    m = MeanIoU(k, IGN)
    m.update(pred[:2], truth[:2])
    m.update(pred[2:], truth[2:])
    r = m.compute()
    t, p = truth.numpy().ravel(), pred.numpy().ravel()
    valid = t != IGN
    ious = []
    for c in range(k):
        inter = np.sum((t == c) & (p == c) & valid)
        union = np.sum(((t == c) | (p == c)) & valid)
        ious.append(inter / union)
    assert r["per_class_iou"].tolist() == pytest.approx(ious)
    assert r["miou"] == pytest.approx(float(np.mean(ious)))
    assert r["pixel_accuracy"] == pytest.approx(float(np.mean(t[valid] == p[valid])))
    # panoptic input through label_divisor gives the same numbers
    mp = MeanIoU(k, IGN, label_divisor=DIV)
    mp.update(pred * DIV + 3, truth * DIV)
    assert mp.compute()["miou"] == pytest.approx(r["miou"])


# --------------------------------------------------------------------------- AP


def _instances_truth():
    t = torch.zeros(2, 1, 32, 32, dtype=torch.long)  # stuff class 0 everywhere
    t[0, 0, 2:10, 2:12] = 2 * DIV + 1
    t[0, 0, 14:30, 4:20] = 2 * DIV + 2
    t[0, 0, 20:28, 22:30] = 3 * DIV + 1
    t[0, 0, 0:4, 24:32] = 3 * DIV  # crowd
    t[1, 0, 5:25, 5:15] = 4 * DIV + 1
    t[1, 0, 10:20, 18:30] = 2 * DIV + 7
    t[1, 0, 28:32, :] = VOID
    return t


def test_ap_perfect():
    t = _instances_truth()
    ap = InstanceAP(THINGS, DIV, IGN)
    ap.update(t.clone(), t)
    r = ap.compute()
    assert r["ap"] == pytest.approx(1.0) and r["ap50"] == pytest.approx(1.0) and r["ap75"] == pytest.approx(1.0)


def test_ap_false_positive_ranked_first_lowers_ap():
    t = _instances_truth()
    p = t.clone()
    p[1, 0, 0:4, 0:4] = 3 * DIV + 9  # spurious detection of class 3
    scores = [dict(), {4 * DIV + 1: 0.5, 2 * DIV + 7: 0.5, 3 * DIV + 9: 0.9}]
    low = [dict(), {4 * DIV + 1: 0.5, 2 * DIV + 7: 0.5, 3 * DIV + 9: 0.1}]
    scores[0] = low[0] = {int(v): 0.8 for v in t[0].unique()}
    hi = InstanceAP(THINGS, DIV, IGN)
    hi.update(p, t, scores)
    lo = InstanceAP(THINGS, DIV, IGN)
    lo.update(p, t, low)
    assert lo.compute()["ap"] == pytest.approx(1.0)
    assert hi.compute()["ap"] < 0.9
    # score map input: the segment's mean score
    smap = torch.full(p.shape, 0.5)
    smap[p == 3 * DIV + 9] = 0.95
    sm = InstanceAP(THINGS, DIV, IGN)
    sm.update(p, t, smap)
    assert sm.compute()["ap"] == pytest.approx(hi.compute()["ap"])


def test_ap_no_objects_is_nan():
    ap = InstanceAP(THINGS, DIV, IGN)
    z = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    ap.update(z, z)
    assert math.isnan(ap.compute()["ap"])
