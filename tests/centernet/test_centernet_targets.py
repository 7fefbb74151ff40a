"""Targets (every term of the targets entrypoint) against the loop reference; the Gaussian radius."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

import centernet_helpers as H
import centernet_reference as ref

CFG = dict(ref.DEFAULTS, num_classes=3)


def check_targets(got, want):
    for key, value in want.items():
        g = got[key].numpy()
        assert g.shape == value.shape, key
        if key == "heat_truth":
            np.testing.assert_allclose(g, value, rtol=0, atol=1e-7, err_msg=key)
            assert np.array_equal(g == 1.0, value == 1.0), "centers are exactly 1"
        else:
            np.testing.assert_array_equal(g, value, err_msg=key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(H.annotations())
def test_targets_match_reference(sample):
    boxes, classes, h, w = sample
    targets = H.entry("base", "targets", num_classes=3)
    got = H.call(targets, grid=[h, w], boxes=boxes, classes=classes)
    check_targets(got, H.reference_targets(boxes, classes, h, w, CFG))


@settings(max_examples=25, deadline=None)
@given(H.annotations())
def test_radius_fix_targets_match_reference(sample):
    boxes, classes, h, w = sample
    targets = H.entry("radius_fix", "targets", num_classes=3)
    got = H.call(targets, grid=[h, w], boxes=boxes, classes=classes)
    check_targets(got, H.reference_targets(boxes, classes, h, w, CFG, ref.radius_corrected))


def test_large_scene_and_scripted():
    """128 x 128 grid, 50 boxes of every size per image, batch 2, scripted; same as the reference."""
    rng = np.random.default_rng(3)
    n, m = 2, 50
    xy = rng.uniform(-20, 500, (n, m, 2))
    wh = rng.uniform(1, 300, (n, m, 2))
    boxes = torch.from_numpy(np.concatenate([xy, xy + wh], 2).astype(np.float32))
    classes = torch.from_numpy(rng.integers(0, 80, (n, m)))
    targets = torch.jit.script(H.entry("base", "targets"))
    got = H.call(targets, grid=[128, 128], boxes=boxes, classes=classes)
    check_targets(got, H.reference_targets(boxes, classes, 128, 128, ref.DEFAULTS))
    assert int(got["radius_truth"].max()) > 10


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (10, 10), (40, 7), (13, 97), (300, 200)])
def test_radius_formulas(hw):
    h, w = (torch.tensor([float(v)], dtype=torch.float64) for v in hw)
    published = float(H.module("base").gaussian_radius_published(h, w, 0.7))
    corrected = float(H.module("radius_fix").gaussian_radius_corrected(h, w, 0.7))  # emitted where a term uses it
    assert published == pytest.approx(ref.radius_published(*hw), rel=1e-12)
    assert corrected == pytest.approx(ref.radius_corrected(*hw), rel=1e-12)
    # the derivation: two corners each moved by r inside (case 2) keep IoU (h - 2r)(w - 2r) / hw = 0.7
    # when r is the binding case; the corrected radius never exceeds any case's root
    r2 = ((2 * (hw[0] + hw[1])) - math.sqrt((2 * (hw[0] + hw[1])) ** 2 - 16 * 0.3 * hw[0] * hw[1])) / 8
    assert (hw[0] - 2 * r2) * (hw[1] - 2 * r2) / (hw[0] * hw[1]) == pytest.approx(0.7)
    assert corrected <= r2 + 1e-12
    assert published > corrected  # the published radius is larger (wider Gaussians)


def test_gaussian_shape_one_object():
    """One 40 x 40 px box centered at output cell (5, 5): radius and sigma = (2r + 1) / 6 as in the math."""
    targets = H.entry("base", "targets", num_classes=2)
    boxes = torch.tensor([[[2.0, 2.0, 42.0, 42.0]]])  # 10 x 10 cells, center (5.5, 5.5)
    got = H.call(targets, grid=[16, 16], boxes=boxes, classes=torch.tensor([[1]]))
    r = int(ref.radius_published(10, 10))
    assert int(got["radius_truth"][0, 0]) == r
    sigma = (2 * r + 1) / 6
    heat = got["heat_truth"][0, 1]
    assert float(heat[5, 5]) == 1.0 and float(got["heat_truth"][0, 0].abs().sum()) == 0.0
    assert float(heat[5, 5 + r]) == pytest.approx(math.exp(-r * r / (2 * sigma * sigma)), rel=1e-6)
    assert float(heat[5, 5 + r + 1]) == 0.0 if 5 + r + 1 < 16 else True
    assert got["offset_truth"][0, 0].tolist() == [0.5, 0.5]
    assert got["size_truth"][0, 0].tolist() == [10.0, 10.0]
    assert int(got["index_truth"][0, 0]) == 5 * 16 + 5
