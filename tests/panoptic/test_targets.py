"""Ground-truth maps and weights (targets entrypoint) against the loop reference."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

import panoptic_helpers as H
import panoptic_reference as ref


def check_targets(pan, variant="base", **config):
    cfg = dict(H.CFG, **config)
    want = ref.targets(pan, cfg)
    got = H.entry(variant, "targets", **config)(torch.from_numpy(pan))
    for name in ["semantic_truth", "instance_truth", "thing_mask_truth", "crowd_truth", "void_truth",
                 "semantic_weights", "center_weights", "offset_weights"]:
        np.testing.assert_array_equal(got[name].numpy(), want[name], err_msg=name)
    np.testing.assert_allclose(got["center_truth"].numpy(), want["center_truth"], atol=1e-6, err_msg="center_truth")
    np.testing.assert_allclose(got["offset_truth"].numpy(), want["offset_truth"], atol=1e-4, err_msg="offset_truth")
    # instance numbering: index map and instance_truth describe the same partition
    idx = got["instance_index_truth"].numpy()
    np.testing.assert_array_equal(idx >= 0, want["instance_truth"] >= 0)
    s = H.session(variant, **config)
    s.bind(panoptic=torch.from_numpy(pan))
    ids = s.instance_ids_truth().numpy()
    batch = s.instance_batch_truth().numpy()
    area = s.instance_area_truth().numpy()
    cents = s.centroids_truth().numpy()
    assert len(ids) == len(want["centroids"])
    for i, (b, pid) in enumerate(zip(batch, ids)):
        assert (idx[b] == i).sum() == area[i] == want["areas"][(int(b), int(pid))]
        np.testing.assert_allclose(cents[i], want["centroids"][(int(b), int(pid))], rtol=1e-6)
        assert np.all(want["instance_truth"][b][idx[b] == i] == pid)
    np.testing.assert_array_equal(got["centroids_truth"].numpy(), cents)
    np.testing.assert_array_equal(got["instance_batch_truth"].numpy(), batch)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps())
def test_targets_match_reference(pan):
    check_targets(pan)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(max_n=1, max_side=12))
def test_targets_small_sigma_and_crowd_ignored(pan):
    # a radius that cuts Gaussians inside small maps, crowd ignored in the semantic target (COCO-like)
    check_targets(pan, sigma=1.5, gaussian_radius=2.0, ignore_crowd_in_semantic=True, small_instance_area=3)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(max_n=2, max_side=12), crowd_ignored=st.booleans())
def test_targets_when_the_ignore_label_is_a_class(pan, crowd_ignored):
    # class 0 (a background of every map) as the ignore label: its pixels weigh 0 in semantic_weights too,
    # which then compares the target itself instead of combining the void and crowd maps
    check_targets(pan, ignore_label=0, ignore_crowd_in_semantic=crowd_ignored)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_inst=st.integers(200, 260), seed=st.integers(0, 2 ** 31))
def test_targets_many_instances(n_inst, seed):
    pan = H.many_instances(n_inst, side=51, seed=seed)
    check_targets(pan)
    out = H.entry("base", "targets")(torch.from_numpy(pan))
    assert out["centroids_truth"].shape == (n_inst, 2)


@pytest.mark.parametrize("fill", [255 * 1000, 0, 11 * 1000, -5, 19 * 1000 + 3])
def test_targets_uniform_images(fill):
    """All void, all stuff, all crowd, negative ids, class beyond num_classes: no instance, no crash."""
    pan = np.full((2, 1, 5, 7), fill, np.int64)
    check_targets(pan)
    out = H.entry("base", "targets")(torch.from_numpy(pan))
    assert out["centroids_truth"].shape == (0, 2)
    assert float(out["center_truth"].abs().sum()) == 0.0


def test_targets_int32_input():
    pan = np.full((1, 1, 6, 6), 1000, np.int64)
    pan[0, 0, 1:3, 1:3] = 11001
    a = H.entry("base", "targets")(torch.from_numpy(pan))
    b = H.entry("base", "targets")(torch.from_numpy(pan).int())
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- whole-pixel centers (issue 18)
def _local_maxima(heat: torch.Tensor, kernel: int, threshold: float) -> torch.Tensor:
    """Pixels equal to the max of their kernel x kernel window and above threshold: what the decoder keeps."""
    pooled = torch.nn.functional.max_pool2d(heat, kernel, 1, kernel // 2)
    return (heat == pooled) & (heat > threshold)


@st.composite
def separated_instances(draw):
    """Thing rectangles of any width and height (even sizes give centroids ending in .5), one per 16 x 16 cell
    of a 48 x 64 image, so no two instances share a center pixel."""
    pan = np.zeros((1, 1, 48, 64), np.int64)  # stuff class 0 everywhere
    centers = []
    for cy in range(3):
        for cx in range(4):
            if not draw(st.booleans()):
                continue
            h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
            y0, x0 = cy * 16 + draw(st.integers(0, 15 - h)), cx * 16 + draw(st.integers(0, 15 - w))
            pan[0, 0, y0:y0 + h, x0:x0 + w] = 11000 + len(centers) + 1
            centers.append((y0 + (h - 1) / 2, x0 + (w - 1) / 2))
    return pan, centers


@settings(max_examples=40, deadline=None)
@given(separated_instances())
def test_the_center_target_has_exactly_one_maximum_per_instance_at_its_rounded_centroid(case):
    pan, centers = case
    out = H.entry("base", "targets")(torch.from_numpy(pan))
    peaks = _local_maxima(out["center_truth"], H.CFG["nms_kernel"], H.CFG["center_threshold"])
    found = sorted(tuple(p) for p in peaks[0, 0].nonzero().tolist())
    assert found == sorted((round(cy), round(cx)) for cy, cx in centers)  # Python's round: half to even
    want = ref.targets(pan, H.CFG)
    np.testing.assert_allclose(out["center_truth"].numpy(), want["center_truth"], atol=1e-6)
    # the offsets still point at the exact centroid
    assert sorted(map(tuple, out["centroids_truth"].tolist())) == sorted(centers)


def test_the_exact_centroid_mixin_keeps_the_flat_top_it_is_there_to_show():
    pan = np.zeros((1, 1, 32, 32), np.int64)
    pan[0, 0, 10:14, 10:14] = 11001  # centroid (11.5, 11.5): four pixels at the same distance
    heat = {v: H.entry(v, "targets")(torch.from_numpy(pan))["center_truth"] for v in ("base", "exact_centers")}
    count = {v: int(_local_maxima(h, H.CFG["nms_kernel"], H.CFG["center_threshold"]).sum()) for v, h in heat.items()}
    assert count == {"base": 1, "exact_centers": 4}
    want = ref.targets(pan, H.CFG, exact_centers=True)
    np.testing.assert_allclose(heat["exact_centers"].numpy(), want["center_truth"], atol=1e-6)
