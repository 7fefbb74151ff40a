"""Every entrypoint of every pose variant scripts (== eager); torch.export of infer (static shapes) == eager."""
import inspect

import pytest
import torch

import pose_helpers as H


def sample():
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 60.0], [30.0, 4.0, 70.0, 50.0], [0, 0, 0, 0]],
                          [[2.0, 30.0, 20.0, 90.0], [44.0, 44.0, 46.0, 47.0], [-10, 50, 30, 95]]])
    classes = torch.tensor([[0, 0, -1], [0, 0, 0]])
    g = torch.Generator().manual_seed(3)
    kps = torch.zeros(2, 3, 17, 3)
    lo, hi = boxes[..., :2].unsqueeze(2), boxes[..., 2:].unsqueeze(2)
    kps[..., :2] = lo + torch.rand(2, 3, 17, 2, generator=g) * (hi - lo)
    kps[..., 2] = torch.randint(0, 3, (2, 3, 17), generator=g).float()
    return dict(H.predictions(2, 24, 20, seed=9), grid=[24, 20], boxes=boxes, classes=classes, keypoints=kps)


@pytest.mark.parametrize("variant", H.VARIANTS)
def test_every_entrypoint_scripts_and_matches_eager(variant):
    inputs = sample()
    assert set(H.module(variant).ENTRYPOINTS) == {"train", "infer", "targets"}
    for name in ["train", "infer", "targets"]:
        eager = H.entry(variant, name, top_k=30)
        want, got = H.call(eager, **inputs), H.call(torch.jit.script(eager), **inputs)
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), (variant, name, key)


@pytest.mark.parametrize("variant", ["base", "oracle_all", "no_joint_heatmap"])
def test_infer_exports_with_static_shapes(variant):
    inputs = sample()
    eager = H.entry(variant, "infer", top_k=30)
    args = tuple(inputs[p] for p in inspect.signature(eager.forward).parameters)
    program = torch.export.export(eager, args)
    want, got = eager(*args), program.module()(*args)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    for node in program.graph.nodes:  # static: no symbolic sizes anywhere
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            assert all(isinstance(d, int) for d in val.shape), (node, val.shape)
