"""nearest_center (the instance vote) against a plain loop written from its rule: the first center j minimising
(vy - cy_j)^2 + (vx - cx_j)^2 in float32, each square rounded before the sum; +inf coordinates for empty slots;
a vote whose distances hold NaN gets the first NaN's column (torch.min's answer). Integer coordinates make ties
common; enough votes for several chunks; eager, TorchScript and the static path a tracer takes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import generated.panoptic.base as om

SCRIPTED = torch.jit.script(om.nearest_center)


@np.errstate(invalid="ignore", over="ignore")  # inf - inf: NaN, as in torch
def reference(vy, vx, cy, cx):
    out = []
    for i in range(vy.shape[0]):
        row = 0 if cy.shape[0] == 1 else i
        d = [np.float32(np.float32(vy[i] - cy[row, j]) ** 2) + np.float32(np.float32(vx[i] - cx[row, j]) ** 2)
             for j in range(cy.shape[1])]
        nan = [j for j, v in enumerate(d) if math.isnan(v)]
        out.append(nan[0] if nan else min(range(len(d)), key=lambda j: (d[j], j)))
    return torch.tensor(out, dtype=torch.long)


COORD = st.one_of(st.integers(-3, 12).map(float), st.floats(-3, 12, width=32), st.just(math.inf))


@st.composite
def cases(draw):
    k = draw(st.sampled_from([1, 2, 5, 200]))
    p = draw(st.sampled_from([0, 1, 7, 3000]))  # 3000 votes of 200 centers: 3 chunks, the last one short
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    vy = torch.from_numpy(rng.integers(-2, 12, p).astype(np.float32))
    vx = torch.from_numpy(rng.integers(-2, 12, p).astype(np.float32))
    if p and draw(st.booleans()):
        vy[draw(st.integers(0, p - 1))] = float(draw(st.sampled_from([math.nan, math.inf])))
    cy = torch.tensor(draw(st.lists(COORD, min_size=k, max_size=k)), dtype=torch.float32).view(1, k)
    cx = torch.tensor(draw(st.lists(COORD, min_size=k, max_size=k)), dtype=torch.float32).view(1, k)
    return vy, vx, cy, cx


@settings(max_examples=40, deadline=None)
@given(case=cases())
def test_shared_centers_follow_the_rule(case):
    vy, vx, cy, cx = case
    want = reference(vy.numpy(), vx.numpy(), cy.numpy(), cx.numpy())
    assert torch.equal(om.nearest_center(vy, vx, cy, cx), want)
    assert torch.equal(SCRIPTED(vy, vx, cy, cx), want)
    per_vote = (cy.expand(vy.shape[0], -1), cx.expand(vy.shape[0], -1))
    assert torch.equal(om.nearest_center(vy, vx, *per_vote), want)


@settings(max_examples=15, deadline=None)
@given(case=cases())
def test_per_vote_centers_and_the_static_path_follow_the_rule(case, monkeypatch_static):
    vy, vx, cy, cx = case
    want = reference(vy.numpy(), vx.numpy(), cy.numpy(), cx.numpy())
    assert torch.equal(om.nearest_center(vy, vx, cy, cx), want)
    per_vote = (cy.expand(vy.shape[0], -1), cx.expand(vy.shape[0], -1))
    assert torch.equal(om.nearest_center(vy, vx, *per_vote), want)


@pytest.fixture(scope="module")
def monkeypatch_static():
    """dynamic_shapes_allowed() False inside nearest_center, as while a tracer runs it."""
    patch = pytest.MonkeyPatch()
    patch.setattr(om, "dynamic_shapes_allowed", lambda: False)
    yield
    patch.undo()


def test_votes_that_require_a_gradient():
    """The decode of a network's outputs in training mode: the votes carry a gradient, the answer is indices."""
    vy = torch.tensor([0.0, 5.0, 9.0], requires_grad=True)
    cy = torch.tensor([[1.0, 8.0]], requires_grad=True)
    got = om.nearest_center(vy, vy * 0, cy, cy * 0)
    assert got.tolist() == [0, 1, 1] and not got.requires_grad
