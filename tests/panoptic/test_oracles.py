"""Oracle mixins: each replaces one prediction by the ground truth; oracle-all decodes the truth exactly."""
import numpy as np
import torch
from hypothesis import assume, given, settings, strategies as st, HealthCheck

import panoptic_helpers as H
import panoptic_reference as ref


def distinct_centroids(pan):
    t = ref.targets(pan, H.CFG)
    per_image = {}
    for (n, _), c in t["centroids"].items():
        per_image.setdefault(n, []).append(c)
    return all(len(set(cs)) == len(cs) for cs in per_image.values())


def check_oracle_all(pan):
    infer = H.entry("oracle_all", "infer", stuff_area=0)
    out = infer(torch.from_numpy(pan))
    pred = out["panoptic_pred"].numpy()
    pq, tp, fp, fn, iou = ref.panoptic_quality(pan, pred, H.CFG)
    assert fp == 0 and fn == 0 and iou == tp, (pq, tp, fp, fn, iou)
    assert pq == 1.0
    # stronger than PQ: every labelled non-crowd pixel decodes to its own segment, up to a permutation
    t = ref.targets(pan, H.CFG)
    keep = ~(t["void_truth"] | t["crowd_truth"])
    canon_truth = np.where(t["instance_truth"] >= 0, pan, t["semantic_truth"] * 1000)
    for n in range(pan.shape[0]):
        a, b = canon_truth[n][keep[n]], pred[n][keep[n]]
        pairs = set(zip(a.tolist(), b.tolist()))
        assert len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))
        assert all(x // 1000 == y // 1000 for x, y in pairs)
    assert bool((out["panoptic_pred"][torch.from_numpy(~keep)] == 255 * 1000).all())
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(max_n=3))
def test_oracle_all_decodes_truth_exactly(pan):
    # two instances of one image with the same centroid cannot be told apart by any center/offset
    # decoding; such maps are excluded (docs/panoptic.md)
    assume(distinct_centroids(pan))
    check_oracle_all(pan)


def test_oracle_all_many_instances_and_border():
    pan = H.many_instances(230, side=48)
    pan[0, 0, 0:3, 40:48] = 12 * 1000 + 900  # an instance cut by the border
    out = check_oracle_all(pan)
    count = len(ref.targets(pan, H.CFG)["centroids"])
    assert count > 220 and int(out["center_valid"].sum()) == count  # not capped at top_k


def test_oracle_all_default_stuff_area_filters_small_stuff():
    pan = np.full((1, 1, 8, 8), 0, np.int64)
    pan[0, 0, :2, :2] = 11001
    out = H.entry("oracle_all", "infer")(torch.from_numpy(pan))["panoptic_pred"]
    assert bool((out[0, 0, 2:] == 255000).all()) and bool((out[0, 0, :2, :2] // 1000 == 11).all())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(), seed=st.integers(0, 2 ** 31))
def test_single_oracles_match_reference(pan, seed):
    cfg = dict(H.CFG, stuff_area=3)
    logits, center, offsets = H.predictions(pan.shape, seed)
    t = ref.targets(pan, cfg)
    pan_t = torch.from_numpy(pan)
    sem_oracle = np.where(t["crowd_truth"], 255, t["semantic_truth"])
    # oracle-semantics: predicted centers and offsets, true classes (crowd and void -> void)
    got = H.entry("oracle_semantics", "infer", stuff_area=3)(center, offsets, pan_t)
    want = ref.decode_from(sem_oracle, center.numpy(), offsets.numpy(), cfg)
    np.testing.assert_array_equal(got["semantic_pred"].numpy(), sem_oracle)
    np.testing.assert_array_equal(ref.canonical(got["panoptic_pred"].numpy()), ref.canonical(want["panoptic_pred"]))
    np.testing.assert_array_equal(got["panoptic_pred"].numpy() // 1000, want["panoptic_pred"] // 1000)
    # oracle-offsets: offsets are the offset target
    got = H.entry("oracle_offsets", "infer", stuff_area=3)(logits, center, pan_t)
    want = ref.decode(logits.numpy(), center.numpy(), t["offset_truth"].astype(np.float32), cfg)
    np.testing.assert_array_equal(ref.canonical(got["instance_pred"].numpy()), ref.canonical(want["instance_pred"]))
    np.testing.assert_array_equal(ref.canonical(got["panoptic_pred"].numpy()), ref.canonical(want["panoptic_pred"]))
    # oracle-centers: the exact centroids of each image, score 1
    got = H.entry("oracle_centers", "infer", stuff_area=3)(logits, offsets, pan_t)
    centers = [sorted((1.0, float(np.float32(c[0])), float(np.float32(c[1])))
                      for (m, _), c in t["centroids"].items() if m == n) for n in range(pan.shape[0])]
    for n in range(pan.shape[0]):
        v = got["center_valid"][n]
        mine = sorted((float(s), float(y), float(x)) for s, (y, x) in
                      zip(got["center_scores"][n][v].tolist(), got["centers_pred"][n][v].tolist()))
        assert mine == centers[n]
    want = ref.decode_from(ref.decode(logits.numpy(), center.numpy(), offsets.numpy(), cfg)["semantic_pred"],
                           None, offsets.numpy(), cfg,
                           centers=[[(1.0, y, x) for _, y, x in
                                     [(s, yy, xx) for s, (yy, xx) in zip(got["center_scores"][n].tolist(),
                                                                         got["centers_pred"][n].tolist())
                                      if s > 0]] for n in range(pan.shape[0])])
    np.testing.assert_array_equal(got["instance_pred"].numpy(), want["instance_pred"])
    np.testing.assert_array_equal(got["panoptic_pred"].numpy(), want["panoptic_pred"])
    # the oracle heat map is the center target
    s = H.session("oracle_centers")
    s.bind(panoptic=pan_t)
    np.testing.assert_allclose(s.center_pred().numpy(), t["center_truth"], atol=1e-6)


def test_oracle_train_losses_vanish_for_oracle_heads():
    pan = H.many_instances(20, side=20)
    logits, center, offsets = H.predictions(pan.shape, 0)
    pan_t = torch.from_numpy(pan)
    out = H.entry("oracle_all", "train")(pan_t)
    assert float(out["loss"]) == 0.0
    base = H.entry("base", "train")(logits, center, offsets, pan_t)
    sem = H.entry("oracle_semantics", "train")(center, offsets, pan_t)
    assert float(sem["semantic_loss"]) == 0.0 and float(sem["center_loss"]) == float(base["center_loss"])
    off = H.entry("oracle_offsets", "train")(logits, center, pan_t)
    assert float(off["offset_loss"]) == 0.0 and float(off["semantic_loss"]) == float(base["semantic_loss"])
