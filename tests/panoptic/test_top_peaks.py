"""top_peaks (the center slots of the decode) against a plain sort written from its rule: the k highest
peak scores of each image, highest first, ties by the lower flat index, -inf and index 0 beyond the peaks.
Scores come from a few levels so that ties are common; eager, TorchScript and the static path that tracers take
(dynamic_shapes_allowed() False, as under torch.export or torch.compile; one torch.compile run checks that) are each
compared."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import generated.panoptic.base as om

SCRIPTED = torch.jit.script(om.top_peaks)


def reference(scores, peaks, top_k):
    n = scores.shape[0]
    flat = scores.reshape(n, -1).tolist()
    mask = peaks.reshape(n, -1).tolist()
    k = min(top_k, len(flat[0]))
    values, index = [], []
    for i in range(n):
        found = sorted((-flat[i][c], c) for c in range(len(flat[i])) if mask[i][c])[:k]
        found += [(float("inf"), 0)] * (k - len(found))
        values.append([-v for v, _ in found])
        index.append([c for _, c in found])
    return torch.tensor(values, dtype=scores.dtype), torch.tensor(index, dtype=torch.long)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    levels = draw(st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=4))
    cells = n * h * w
    scores = torch.tensor(draw(st.lists(st.sampled_from(levels), min_size=cells, max_size=cells)))
    peaks = torch.tensor(draw(st.lists(st.booleans(), min_size=cells, max_size=cells)))
    top_k = draw(st.integers(1, h * w + 2))
    return scores.view(n, 1, h, w), peaks.view(n, 1, h, w), top_k


@settings(max_examples=80, deadline=None)
@given(case=cases())
def test_eager_and_torchscript_follow_the_rule(case):
    scores, peaks, top_k = case
    want = reference(scores, peaks, top_k)
    for got in (om.top_peaks(scores, peaks, top_k), SCRIPTED(scores, peaks, top_k)):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def _boundary_tie(scores, peaks, k):
    """The k-th and (k+1)-th peak of some image score the same (where the traced path lets torch.topk pick)."""
    for i in range(scores.shape[0]):
        found = sorted(scores[i].reshape(-1)[peaks[i].reshape(-1)].tolist(), reverse=True)
        if len(found) > k and found[k - 1] == found[k]:
            return True
    return False


@settings(max_examples=80, deadline=None)
@given(case=cases())
def test_the_static_path_follows_the_rule_unless_the_kth_peak_ties(case, monkeypatch_static):
    scores, peaks, top_k = case
    want = reference(scores, peaks, top_k)
    got = om.top_peaks(scores, peaks, top_k)
    assert torch.equal(got[0], want[0])
    if not _boundary_tie(scores, peaks, min(top_k, scores[0].numel())):
        assert torch.equal(got[1], want[1])


def test_torch_compile_takes_the_static_path():
    scores = torch.tensor([[[[0.5, 0.9, 0.5], [0.9, 0.1, 0.5]]], [[[0.2, 0.2, 0.2], [0.2, 0.2, 0.3]]]])
    peaks = torch.tensor([[[[True, True, False], [True, False, True]]], [[[True, False, True], [True, True, False]]]])
    traced = torch.compile(om.top_peaks, fullgraph=True, backend="eager")
    for got, want in zip(traced(scores, peaks, 5), reference(scores, peaks, 5)):
        assert torch.equal(got, want)


@pytest.fixture(scope="module")
def monkeypatch_static():
    """dynamic_shapes_allowed() False inside top_peaks, as while a tracer runs it."""
    patch = pytest.MonkeyPatch()
    patch.setattr(om, "dynamic_shapes_allowed", lambda: False)
    yield
    patch.undo()


def test_a_hand_computed_case():
    scores = torch.tensor([[[[0.5, 0.9, 0.5], [0.9, 0.1, 0.5]]]])
    peaks = torch.tensor([[[[True, True, False], [True, False, True]]]])
    values, index = om.top_peaks(scores, peaks, 5)
    assert values.tolist() == [[0.8999999761581421, 0.8999999761581421, 0.5, 0.5, float("-inf")]]
    assert index.tolist() == [[1, 3, 0, 5, 0]]
