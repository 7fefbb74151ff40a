"""gaussian_heatmap_into (specs/common/heatmaps.yaml) with a window known before the data equals the window sized
from the data (eager) and the whole grid (as while a tracer runs it), for random objects with one constant radius,
as panoptic's center_truth passes, and the same written into a held tensor; center_truth under torch.compile
equals eager."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import generated.panoptic.base as om


def heatmap(objects, radius, window, n, h, w, into=None):
    b = torch.tensor([o[0] for o in objects], dtype=torch.long)
    cy = torch.tensor([o[1] for o in objects], dtype=torch.float32)
    cx = torch.tensor([o[2] for o in objects], dtype=torch.float32)
    p = len(objects)
    spread = torch.full([p], radius / 3.0 + 0.25, dtype=torch.float64)  # sigma > 0 (0 draws NaN on the center)
    r = torch.full([p], radius, dtype=torch.float64)
    return om.gaussian_heatmap_into(b, cy, cx, spread, r, torch.zeros(p, dtype=torch.long),
                                    torch.tensor([o[3] for o in objects], dtype=torch.bool), n, 1, h, w, window, into)


OBJECTS = st.lists(st.tuples(st.integers(0, 1), st.floats(-3, 20), st.floats(-3, 20), st.booleans()), max_size=6)


@settings(max_examples=40, deadline=None)
@given(objects=OBJECTS, radius=st.floats(0, 6), h=st.integers(1, 16), w=st.integers(1, 16))
def test_a_window_known_before_the_data_draws_the_same(objects, radius, h, w):
    window = int(2.0 * radius) + 1
    sized_from_data = heatmap(objects, radius, 0, 2, h, w)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(om, "dynamic_shapes_allowed", lambda: False)  # as while a tracer runs it
        whole_grid = heatmap(objects, radius, 0, 2, h, w)
        traced_window = heatmap(objects, radius, window, 2, h, w)
    assert torch.equal(heatmap(objects, radius, window, 2, h, w), sized_from_data)
    assert torch.equal(traced_window, whole_grid) and torch.equal(whole_grid, sized_from_data)
    held = torch.full((2, 1, h, w), float("nan"))  # whatever the previous call left there
    written = heatmap(objects, radius, window, 2, h, w, into=held)
    assert written is held and torch.equal(held, sized_from_data)


def test_center_truth_compiled_equals_eager():
    pan = torch.zeros(1, 1, 40, 56, dtype=torch.long)
    pan[0, 0, 3:12, 5:20] = 11001
    pan[0, 0, 20:38, 30:50] = 12002
    pan[0, 0, 0:2, 0:56] = 13000  # crowd: no Gaussian
    session = om.Session()
    session.bind(panoptic=pan)
    args = (session.center_points_truth(), session.instance_batch_truth(), session.panoptic_truth())
    terms = om.Terms()
    compiled = torch.compile(terms.center_truth, fullgraph=True, backend="eager")
    assert torch.equal(compiled(*args), terms.center_truth(*args))
    assert int((terms.center_truth(*args) == 1).sum()) == 2  # one peak per instance
