"""Pose decoding (infer entrypoint) against the loop reference of the published multi_pose_decode rule."""
import numpy as np
import pytest
import torch

import pose_helpers as H

ref = H.ref


def _infer(variant, pred, **config):
    return H.call(H.entry(variant, "infer", **config), **pred)


@pytest.mark.parametrize("variant,flags", [("base", {}), ("no_joint_heatmap", {"joint_heatmap": False}),
                                           ("no_joint_sub_offset", {"sub_offset": False})])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_matches_the_loop_reference(variant, flags, seed):
    n, h, w = 2, 9, 11
    pred = H.predictions(n, h, w, seed=seed)
    pred["joint_offset"] = pred["joint_offset"] * 1.5  # reach farther peaks too
    cfg = dict(ref.DEFAULTS, top_k=12, joint_threshold=0.3)
    got = _infer(variant, pred, top_k=12, joint_threshold=0.3)
    snapped = 0
    for i in range(n):
        want = ref.decode({k: v[i].double().numpy() for k, v in pred.items()}, cfg, **flags)
        assert got["scores_pred"].shape == (n, 12) and got["keypoints_pred"].shape == (n, 12, 17, 2)
        for k, (score, box, joints) in enumerate(want):
            if score == 0.0:  # cells that are no peak score 0; their order among themselves is arbitrary
                assert got["scores_pred"][i, k:].eq(0).all()
                break
            assert got["scores_pred"][i, k].item() == pytest.approx(score, abs=1e-6)
            np.testing.assert_allclose(got["boxes_pred"][i, k].numpy(), box, atol=1e-4)
            np.testing.assert_allclose(got["keypoints_pred"][i, k].numpy(), np.array(joints), atol=1e-4)
        regressed = _infer("no_joint_heatmap", pred, top_k=12)["keypoints_pred"][i]
        snapped += int((got["keypoints_pred"][i] - regressed).abs().amax(-1).gt(1e-6).sum())
    if flags.get("joint_heatmap", True):
        assert snapped > 10  # the rule moved joints in these cases (not a test of the regressed path only)


def test_snapping_rule_by_hand():
    """One person at cell (5, 5), box 6 x 6 cells; joint 0 regressed to (5, 7): a peak at (5.5, 7.5) (inside, 0.7
    away, reach 0.3 * 6 = 1.8) is taken; joint 1 regressed to (5, 7) with its only peak at (5, 9.5) (2.5 away) is
    not; joint 2's nearest peak lies outside the box (x 8.5 > 8); joint 3's peak scores 0.05 <= 0.1."""
    h = w = 12
    pred = {k: torch.zeros_like(v) for k, v in H.predictions(1, h, w).items()}
    pred["heatmap"][:] = -10.0
    pred["heatmap"][0, 0, 5, 5] = 5.0
    pred["size"][0, :, 5, 5] = 6.0
    pred["offset"][0, :, 5, 5] = 0.0
    for j in range(4):
        pred["joint_offset"][0, 2 * j:2 * j + 2, 5, 5] = torch.tensor([0.0, 2.0])
    pred["joint_heatmap"][:] = -10.0
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    pred["joint_heatmap"][0, 0, 5, 7] = logit(0.9)
    pred["joint_sub_offset"][0, :, 5, 7] = torch.tensor([0.5, 0.5])
    pred["joint_heatmap"][0, 1, 5, 9] = logit(0.9)
    pred["joint_sub_offset"][0, :, 5, 9] = torch.tensor([0.0, 0.5])
    pred["joint_heatmap"][0, 2, 5, 8] = logit(0.9)
    pred["joint_sub_offset"][0, :, 5, 8] = torch.tensor([0.0, 0.5])
    pred["joint_heatmap"][0, 3, 5, 7] = logit(0.05)
    got = _infer("base", pred, top_k=4)["keypoints_pred"][0, 0] / 4.0  # (x, y) in cells
    assert got[0].tolist() == pytest.approx([7.5, 5.5])
    for j in (1, 2, 3):
        assert got[j].tolist() == pytest.approx([7.0, 5.0]), j
    assert got[4].tolist() == pytest.approx([5.0, 5.0])  # zero offsets, no peaks: the center cell


def test_static_shapes_whatever_the_number_of_people():
    pred = H.predictions(3, 6, 7, seed=4)
    out = _infer("base", pred, top_k=100)
    assert out["keypoints_pred"].shape == (3, 42, 17, 2) and out["boxes_pred"].shape == (3, 42, 4)


def test_oracle_all_returns_the_ground_truth_joints():
    """With every map from the ground truth, the K best people are the annotated ones (score 1) and their labelled
    joints come back at the annotated positions (snapped to the oracle peaks at distance 0) - where no two joints
    share a cell of the one sub-offset map."""
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 60.0], [44.0, 6.0, 76.0, 70.0], [0, 0, 0, 0]]])
    classes = torch.tensor([[0, 0, -1]])
    g = torch.Generator().manual_seed(0)
    kps = torch.zeros(1, 3, 17, 3)
    for slot in range(2):  # distinct joint cells (joint types share the one sub-offset map, as published)
        x0, y0 = int(boxes[0, slot, 0]) // 4, int(boxes[0, slot, 1]) // 4
        cells = torch.randperm(7 * 12, generator=g)[:17]
        kps[0, slot, :, 0] = (x0 + cells % 7 + torch.rand(17, generator=g)) * 4
        kps[0, slot, :, 1] = (y0 + cells // 7 + torch.rand(17, generator=g)) * 4
    kps[..., 2] = 2.0
    kps[0, 0, 3, 2] = 0.0
    pred = H.predictions(1, 20, 20, seed=1)
    out = H.call(H.entry("oracle_all", "infer", top_k=5), **pred, boxes=boxes, classes=classes, keypoints=kps)
    assert out["scores_pred"][0, :2].tolist() == [1.0, 1.0] and out["scores_pred"][0, 2:].max() < 1.0
    order = out["boxes_pred"][0, :2, 0].argsort()
    for slot, k in enumerate(order.tolist()):
        torch.testing.assert_close(out["boxes_pred"][0, k], boxes[0, slot], atol=1e-5, rtol=0)
        labelled = kps[0, slot, :, 2] > 0
        torch.testing.assert_close(out["keypoints_pred"][0, k][labelled], kps[0, slot, labelled, :2], atol=1e-5, rtol=0)
