"""Pose targets (targets entrypoint) against the loop reference, on varied scenes (hypothesis)."""
import numpy as np
import torch
from hypothesis import given, settings

import pose_helpers as H

KEYS = ["heat_truth", "size_truth", "offset_truth", "index_truth", "mask_truth", "radius_truth", "valid_truth",
        "joint_rel_truth", "joint_mask_truth", "joint_valid_truth", "joint_heat_truth", "joint_index_truth",
        "joint_sub_offset_truth"]


def _targets(boxes, classes, kps, h, w, variant="base"):
    return H.call(H.entry(variant, "targets"), grid=[h, w], boxes=boxes,
                  classes=classes, keypoints=kps)


@settings(max_examples=40, deadline=None)
@given(H.scenes())
def test_targets_match_the_loop_reference(scene):
    boxes, classes, kps, h, w = scene
    got = _targets(boxes, classes, kps, h, w)
    want = H.reference_targets(boxes, classes, kps, h, w)
    assert list(got) == KEYS
    for key in KEYS:
        np.testing.assert_allclose(got[key].numpy(), want[key], atol=1e-5, rtol=0, err_msg=key)


@settings(max_examples=25, deadline=None)
@given(H.scenes())
def test_oracle_maps_match_the_reference(scene):
    boxes, classes, kps, h, w = scene
    session = H.module("base").Session()
    session.bind(grid=[h, w], boxes=boxes, classes=classes, keypoints=kps)
    want = H.reference_targets(boxes, classes, kps, h, w)
    for key in ["joint_offset_map_truth", "joint_sub_offset_map_truth"]:
        np.testing.assert_allclose(getattr(session, key)().numpy(), want[key], atol=1e-5, rtol=0, err_msg=key)


def test_a_hand_computed_person():
    """One person, box (8, 8)-(24, 40) px at stride 4: cells (2, 2)-(6, 10), center (6, 4); nose at (13, 21) px =
    (5.25, 3.25) cells, hidden left eye (v = 1) at (15, 18) px, right eye unlabelled, left ear outside the image."""
    kps = torch.zeros(1, 1, 17, 3)
    kps[0, 0, 0] = torch.tensor([13.0, 21.0, 2.0])
    kps[0, 0, 1] = torch.tensor([15.0, 18.0, 1.0])
    kps[0, 0, 2] = torch.tensor([14.0, 14.0, 0.0])
    kps[0, 0, 3] = torch.tensor([-3.0, 14.0, 2.0])
    t = _targets(torch.tensor([[[8.0, 8.0, 24.0, 40.0]]]), torch.tensor([[0]]), kps, 12, 8)
    assert t["index_truth"].tolist() == [[6 * 8 + 4]]
    assert t["joint_valid_truth"][0, 0, :4].tolist() == [True, True, False, False]
    assert t["joint_rel_truth"][0, 0, 0].tolist() == [5.25 - 6, 3.25 - 4]
    assert t["joint_rel_truth"][0, 0, 1].tolist() == [4.5 - 6, 3.75 - 4]
    assert t["joint_index_truth"][0, :2].tolist() == [5 * 8 + 3, 4 * 8 + 3]
    assert t["joint_sub_offset_truth"][0, :2].tolist() == [[0.25, 0.25], [0.5, 0.75]]
    assert t["joint_heat_truth"][0, 0, 5, 3] == 1.0 and t["joint_heat_truth"][0, 1, 4, 3] == 1.0
    assert t["joint_heat_truth"][0, 2].max() == 0.0 and t["joint_heat_truth"][0, 3].max() == 0.0
    assert t["mask_truth"].tolist() == [[1.0]]


def test_a_person_without_labelled_joints_keeps_its_center_but_no_size_or_offset_loss():
    """Published: reg_mask 0 when the visibilities sum to 0; the center Gaussian is still drawn (its 0.9999 mark
    is drawn over by the Gaussian's 1)."""
    t = _targets(torch.tensor([[[8.0, 8.0, 24.0, 40.0]]]), torch.tensor([[0]]), torch.zeros(1, 1, 17, 3), 12, 8)
    assert t["mask_truth"].tolist() == [[0.0]] and t["valid_truth"].tolist() == [[True]]
    assert t["heat_truth"][0, 0, 6, 4] == 1.0 and t["joint_mask_truth"].sum() == 0


def test_no_python_loop_over_people_or_joints():
    """The generated module's only loops: the input checks, the separable max filter's two dims and the per-image
    loops of the library (peak_topk, penalty_reduced_focal); none over people, joints or cells."""
    import ast
    import inspect

    for variant in H.VARIANTS:
        tree = ast.parse(inspect.getsource(H.module(variant)))
        loops = {ast.unparse(node.iter if isinstance(node, ast.For) else node.test) for node in ast.walk(tree)
                 if isinstance(node, (ast.For, ast.While))}
        assert loops <= {"range(len(sizes))", "names.items()", "[3, 2]", "range(n)", "range(1, n)",
                         "2 * width <= kernel", "values.items()"}, (variant, loops)
