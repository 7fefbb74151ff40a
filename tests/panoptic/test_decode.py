"""Decoding (infer entrypoint) against the loop reference, up to instance-label permutation."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

import panoptic_helpers as H
import panoptic_reference as ref


def split(pan, div=1000):
    """(class part, canonical instance labels): equality of both = equality up to a permutation."""
    return pan // div, ref.canonical(pan)


def check_decode(logits, center, offsets, variant="base", **config):
    cfg = dict(H.CFG, **config)
    got = H.entry(variant, "infer", **config)(logits, center, offsets)
    want = ref.decode(logits.numpy(), center.numpy(), offsets.numpy(), cfg)
    np.testing.assert_array_equal(got["semantic_pred"].numpy(), want["semantic_pred"])
    n, k = got["center_valid"].shape
    assert k == min(cfg["top_k"], logits.shape[2] * logits.shape[3])
    for i in range(n):
        valid = got["center_valid"][i].numpy()
        # valid slots first, then padding with score 0
        assert valid.sum() == len(want["centers"][i]) and valid[: valid.sum()].all()
        assert float(got["center_scores"][i][~torch.from_numpy(valid)].abs().sum()) == 0.0
        mine = sorted((float(s), float(y), float(x)) for s, (y, x) in
                      zip(got["center_scores"][i][valid].tolist(), got["centers_pred"][i][valid].tolist()))
        assert mine == sorted(want["centers"][i])
        scores = got["center_scores"][i][valid]
        assert bool((scores[:-1] >= scores[1:]).all())
    # instance slots: same partition of the pixels, slots pointing at the same center coordinates
    gi, wi = got["instance_pred"].numpy(), want["instance_pred"]
    np.testing.assert_array_equal(gi >= 0, wi >= 0)
    np.testing.assert_array_equal(ref.canonical(gi), ref.canonical(wi))
    for i in range(n):
        for j in np.unique(gi[i][gi[i] >= 0]):
            jj = np.unique(wi[i][gi[i] == j])
            assert len(jj) == 1
            assert tuple(got["centers_pred"][i, j].tolist()) == want["centers"][i][jj[0]][1:]
    gc, gl = split(got["panoptic_pred"].numpy())
    wc, wl = split(want["panoptic_pred"])
    np.testing.assert_array_equal(gc, wc)
    np.testing.assert_array_equal(gl, wl)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 18), st.integers(1, 18)), seed=st.integers(0, 2 ** 31),
       stuff_area=st.sampled_from([0, 5, 2048]))
def test_decode_matches_reference(shape, seed, stuff_area):
    n, h, w = shape
    logits, center, offsets = H.predictions((n, 1, h, w), seed)
    check_decode(logits, center, offsets, stuff_area=stuff_area)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 31), top_k=st.integers(1, 6), kernel=st.sampled_from([1, 3, 5, 7, 9]),
       threshold=st.sampled_from([0.1, 0.5, 0.9]))
def test_decode_settings(seed, top_k, kernel, threshold):
    logits, center, offsets = H.predictions((2, 1, 14, 17), seed)
    check_decode(logits, center, offsets, top_k=top_k, nms_kernel=kernel, center_threshold=threshold,
                 stuff_area=3)


def test_decode_plateau_and_no_center():
    """Equal neighbouring maxima are all peaks; an image with no center leaves its things void."""
    logits, center, offsets = H.predictions((2, 1, 9, 9), 1)
    center.zero_()
    center[0, 0, 4, 4:6] = 0.7
    check_decode(logits, center, offsets, stuff_area=0)
    out = H.entry("base", "infer", stuff_area=0)(logits, center, offsets)
    assert int(out["center_valid"][0].sum()) == 2 and int(out["center_valid"][1].sum()) == 0
    things = H.module("base").Session()
    things.bind(semantic_logits=logits)
    assert bool((out["panoptic_pred"][1][things.thing_mask_pred()[1]] == 255 * 1000).all())


def test_decode_more_peaks_than_top_k():
    """About 250 distinct peaks, top_k 200: the 200 best are kept."""
    g = torch.Generator().manual_seed(5)
    center = torch.zeros(1, 1, 64, 64)
    center[0, 0, ::4, ::4] = torch.rand(16, 16, generator=g) * 0.8 + 0.15
    logits, _, offsets = H.predictions((1, 1, 64, 64), 2)
    check_decode(logits, center, offsets)
    out = H.entry("base", "infer")(logits, center, offsets)
    assert int(out["center_valid"].sum()) == 200


def test_semantic_pred_first_maximum_and_max_filter():
    logits = torch.zeros(1, 19, 3, 3)
    logits[0, 4] = 1.0
    logits[0, 7] = 1.0
    out = H.entry("base", "infer")(logits, torch.zeros(1, 1, 3, 3), torch.zeros(1, 2, 3, 3))
    assert bool((out["semantic_pred"] == 4).all())
    f = H.module("base").max_filter_same
    g = torch.Generator().manual_seed(0)
    for k in [1, 3, 5, 7, 9, 13]:
        x = torch.rand(2, 1, 11, 16, generator=g)
        assert torch.equal(f(x, k), torch.nn.functional.max_pool2d(x, k, 1, k // 2)), k


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.sampled_from([1, 2, 19, 133, 300]), st.integers(1, 9), st.integers(1, 9)),
       seed=st.integers(0, 2 ** 31))
def test_semantic_pred_equals_torch_max_with_ties(shape, seed):
    """The uint8 rank trick (K <= 255) and the max(1) fallback give torch.max(x, 1)'s first maximum."""
    n, k, h, w = shape
    g = torch.Generator().manual_seed(seed)
    logits = torch.randint(0, 3, (n, k, h, w), generator=g).float()  # many ties
    m = H.module("base").Terms(num_classes=k, thing_ids=[])
    assert torch.equal(m.semantic_pred(logits), torch.max(logits, 1, keepdim=True)[1])


def test_semantic_pred_by_bands_equals_torch_max(monkeypatch):
    """Wide images go by bands of rows (~32 K pixels; here bands of 5, 5 and 3 rows): eager, TorchScript and the
    static path a tracer takes give torch.max(x, 1)'s first maximum, NaN pixels K."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randint(0, 4, (2, 19, 13, 3000), generator=g).float()
    logits[1, :, 12, 7] = float("nan")
    want = torch.max(logits, 1, keepdim=True)[1]
    want[1, 0, 12, 7] = 19
    module = H.module("base")
    terms = module.Terms(num_classes=19, thing_ids=[])
    assert torch.equal(terms.semantic_pred(logits), want)
    assert torch.equal(torch.jit.script(H.entry("base", "infer"))(logits, logits[:, :1], logits[:, :2])["semantic_pred"],
                       want)
    monkeypatch.setattr(module, "dynamic_shapes_allowed", lambda: False)
    assert torch.equal(terms.semantic_pred(logits), want)


def test_half_precision_inputs_decode_like_float32():
    """float16 / bfloat16 network outputs (AMP): coordinates and votes are computed in float32."""
    logits, center, offsets = H.predictions((2, 1, 16, 20), 4)
    infer = H.entry("base", "infer", stuff_area=3)
    for dtype in [torch.float16, torch.bfloat16]:
        args = [t.to(dtype) for t in (logits, center, offsets)]
        got = infer(*args)
        want = infer(*[t.float() for t in args])
        assert got["centers_pred"].dtype == torch.float32
        for key in want:
            assert torch.equal(got[key].to(want[key].dtype), want[key]), (dtype, key)
