"""Every pose loss term against the loop reference (published MultiPoseLoss), on varied scenes."""
import math

import numpy as np
import torch
from hypothesis import given, settings

import pose_helpers as H

ref = H.ref
cn = ref.cn


def _losses(variant, pred, boxes, classes, kps, **config):
    return H.call(H.entry(variant, "train", **config), **pred, boxes=boxes, classes=classes, keypoints=kps)


def _reference(pred, boxes, classes, kps, h, w, mse=False):
    n = boxes.shape[0]
    objs = [ref.people(boxes[i].numpy(), classes[i].numpy(), kps[i].numpy(), h, w) for i in range(n)]
    t = H.reference_targets(boxes, classes, kps, h, w)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x.double().numpy()))  # noqa: E731
    heat = cn.mse_loss(sig(pred["heatmap"]), t["heat_truth"]) if mse else cn.focal_loss(sig(pred["heatmap"]), t["heat_truth"])
    jheat = cn.mse_loss(sig(pred["joint_heatmap"]), t["joint_heat_truth"]) if mse else \
        cn.focal_loss(sig(pred["joint_heatmap"]), t["joint_heat_truth"])
    out = dict(heat_loss=heat, size_loss=ref.masked_reg_l1(pred["size"].numpy(), objs, "size"),
               offset_loss=ref.masked_reg_l1(pred["offset"].numpy(), objs, "offset"),
               joint_loss=ref.joint_l1(pred["joint_offset"].numpy(), objs),
               joint_heat_loss=jheat,
               joint_sub_offset_loss=ref.sub_offset_l1(pred["joint_sub_offset"].numpy(), objs))
    out["loss"] = (out["heat_loss"] + 0.1 * out["size_loss"] + out["offset_loss"] + out["joint_loss"]
                   + out["joint_heat_loss"] + out["joint_sub_offset_loss"])
    return out


@settings(max_examples=25, deadline=None)
@given(H.scenes())
def test_losses_match_the_loop_reference(scene):
    boxes, classes, kps, h, w = scene
    pred = H.predictions(boxes.shape[0], h, w, seed=h * 31 + w)
    got = _losses("base", pred, boxes, classes, kps)
    want = _reference(pred, boxes, classes, kps, h, w)
    for key, value in want.items():
        assert math.isclose(float(got[key]), value, rel_tol=2e-5, abs_tol=2e-5), (key, float(got[key]), value)


@settings(max_examples=15, deadline=None)
@given(H.scenes())
def test_mse_loss_variant(scene):
    boxes, classes, kps, h, w = scene
    pred = H.predictions(boxes.shape[0], h, w, seed=3)
    got = _losses("mse_loss", pred, boxes, classes, kps)
    want = _reference(pred, boxes, classes, kps, h, w, mse=True)
    for key in ("heat_loss", "joint_heat_loss", "loss"):
        assert math.isclose(float(got[key]), want[key], rel_tol=2e-5, abs_tol=2e-6), key


def test_weights_scale_their_terms():
    boxes, classes, kps, h, w = torch.tensor([[[8.0, 8.0, 40.0, 44.0]]]), torch.tensor([[0]]), None, 12, 12
    kps = torch.zeros(1, 1, 17, 3)
    kps[0, 0, :, 0] = torch.linspace(10, 38, 17)
    kps[0, 0, :, 1] = torch.linspace(12, 40, 17)
    kps[0, 0, :, 2] = 2
    pred = H.predictions(1, h, w, seed=1)
    a = _losses("base", pred, boxes, classes, kps)
    b = _losses("base", pred, boxes, classes, kps, joint_weight=2.0, joint_heat_weight=0.5)
    want = a["loss"] + a["joint_loss"] - 0.5 * a["joint_heat_loss"]
    assert torch.allclose(b["loss"], want, rtol=1e-6)


def test_no_joint_heatmap_and_no_sub_offset_zero_their_losses():
    boxes, classes, kps, h, w = torch.tensor([[[8.0, 8.0, 40.0, 44.0]]]), torch.tensor([[0]]), torch.zeros(1, 1, 17, 3), 12, 12
    kps[0, 0, :, :2] = 20.0
    kps[0, 0, :, 2] = 2
    pred = H.predictions(1, h, w, seed=2)
    base = _losses("base", pred, boxes, classes, kps)
    no_hm = _losses("no_joint_heatmap", pred, boxes, classes, kps)
    no_off = _losses("no_joint_sub_offset", pred, boxes, classes, kps)
    assert no_hm["joint_heat_loss"] == 0 and no_hm["joint_sub_offset_loss"] == 0 and no_off["joint_sub_offset_loss"] == 0
    assert torch.allclose(no_hm["loss"], base["loss"] - base["joint_heat_loss"] - base["joint_sub_offset_loss"], rtol=1e-6)
    assert no_off["joint_heat_loss"] == base["joint_heat_loss"]
    assert "joint_heatmap" not in H.module("no_joint_heatmap").ENTRYPOINTS["infer"].forward.__code__.co_varnames


@settings(max_examples=10, deadline=None)
@given(H.scenes(max_n=2, max_m=3))
def test_dense_hp_targets_and_loss(scene):
    boxes, classes, kps, h, w = scene
    n = boxes.shape[0]
    session = H.module("dense_hp").Session()
    pred = H.predictions(n, h, w, seed=5)
    session.bind(**pred, grid=[h, w], boxes=boxes, classes=classes, keypoints=kps)
    dense = [ref.dense_targets(boxes[i].numpy(), classes[i].numpy(), kps[i].numpy(), h, w) for i in range(n)]
    np.testing.assert_allclose(session.joint_dense_truth().numpy(), np.stack([d[0] for d in dense]), atol=1e-5)
    np.testing.assert_allclose(session.joint_dense_mask_truth().numpy(), np.stack([d[1] for d in dense]), atol=1e-6)
    want = ref.dense_l1(pred["joint_offset"].double().numpy(), [d[0] for d in dense], [d[1] for d in dense])
    assert math.isclose(float(session.joint_loss()), want, rel_tol=1e-4, abs_tol=1e-5)
