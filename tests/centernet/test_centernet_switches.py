"""The published switches as mixins: dense-wh (--dense_wh), norm-wh (--norm_wh), reg-loss-sl1 (--reg_loss sl1)
and no-offset (--not_reg_offset), against the loop reference (hand-computed cases and hypothesis box sets),
scripted == eager, and what each leaves unchanged."""
import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings

import centernet_helpers as H
import centernet_reference as ref

C = 3
CFG = dict(ref.DEFAULTS, num_classes=C)
SWITCHES = ["dense_wh", "norm_wh", "reg_loss_sl1", "no_offset"]


def session(variant, boxes, classes, preds, **config):
    s = H.module(variant).Session(num_classes=C, **config)
    s.bind(boxes=boxes, classes=classes, **{"grid": list(preds["heatmap"].shape[2:]), **preds})
    return s


def reference_losses(variant, boxes, classes, preds, h, w):
    n = boxes.shape[0]
    objs = [ref.objects(boxes[i].numpy(), classes[i].numpy(), h, w, CFG) for i in range(n)]
    heat = np.stack([ref.heat_target(o, h, w, CFG) for o in objs])
    heat_loss = ref.focal_loss(torch.sigmoid(preds["heatmap"]).numpy(), heat, 2.0, 4.0)
    size, offset = preds["size"].numpy(), preds["offset"].numpy()
    size_loss, offset_loss = ref.reg_l1(size, objs, "size"), ref.reg_l1(offset, objs, "offset")
    if variant == "dense_wh":
        size_loss = ref.dense_l1(size, np.stack([ref.dense_size_target(o, h, w) for o in objs]), heat)
    elif variant == "norm_wh":
        size_loss = ref.reg_norm_l1(size, objs, "size")
    elif variant == "reg_loss_sl1":
        size_loss, offset_loss = ref.reg_smooth_l1(size, objs, "size"), ref.reg_smooth_l1(offset, objs, "offset")
    elif variant == "no_offset":
        offset_loss = 0.0
    return dict(heat_loss=heat_loss, size_loss=size_loss, offset_loss=offset_loss,
                loss=heat_loss + 0.1 * size_loss + offset_loss)


def box_batch(rows):
    """[(x1, y1, x2, y2, class), ...] of one image -> (boxes [1, M, 4], classes [1, M])."""
    boxes = torch.tensor([[list(r[:4]) for r in rows]], dtype=torch.float32)
    return boxes, torch.tensor([[r[4] for r in rows]])


def zeros(h, w):
    return dict(heatmap=torch.zeros(1, C, h, w), size=torch.zeros(1, 2, h, w), offset=torch.zeros(1, 2, h, w),
                class_size=torch.zeros(1, C, 2, h, w), grid=[h, w])


# ---------------------------------------------------------------- hand-computed cases

def test_dense_size_target_by_hand():
    """A: cells (0..4) x (0..4), class 0, center cell (2, 2); B: (1..6) x (0..4), class 1, center (2, 3); both
    radius 1 (sizes 4 x 4 and 4 x 5, published radius 1.09 and 1.22). Where the windows overlap, the closer
    center wins: column 2 is A's (d² 0 against 1), column 3 B's, whatever the classes."""
    boxes, classes = box_batch([(0, 0, 16, 16, 0), (4, 0, 24, 16, 1)])
    s = session("dense_wh", boxes, classes, zeros(6, 8))
    assert s.radius_truth().tolist() == [[1, 1]] and s.cell_truth().tolist() == [[[2, 2], [2, 3]]]
    want = torch.zeros(2, 6, 8)
    want[0, 1:4, 1:5] = 4.0
    want[1, 1:4, 1:3] = 4.0
    want[1, 1:4, 3:5] = 5.0
    assert torch.equal(s.size_dense_truth()[0], want)
    # the loss with a zero size map: sum of weight x (h + w) over 2 sum of weight, weight = class-max heat map;
    # each object owns its center column (1, e^-2, e^-2) and one side column (e^-2, e^-4, e^-4)
    side = 1 + 3 * math.exp(-2) + 2 * math.exp(-4)
    assert float(s.size_loss()) == pytest.approx((8 * side + 9 * side) / (4 * side + 1e-4), rel=1e-6)


def test_dense_size_target_ties_go_to_the_later_slot():
    """Two objects on one center cell with the same radius and different sizes tie on every cell of the window:
    the later slot wins everywhere (the published draw order keeps the last object whose Gaussian is >= the
    heat map drawn so far)."""
    a, b = (0, 0, 16, 16, 0), (2, 2, 16, 16, 2)  # 4 x 4 and 3.5 x 3.5 cells, both center cell (2, 2), radius 1
    for rows, size in [([a, b], 3.5), ([b, a], 4.0)]:
        boxes, classes = box_batch(rows)
        s = session("dense_wh", boxes, classes, zeros(6, 6))
        assert s.radius_truth().tolist() == [[1, 1]]
        dense = s.size_dense_truth()[0]
        assert torch.equal(dense[:, 1:4, 1:4], torch.full((2, 3, 3), size))
        assert float(dense.abs().sum()) == pytest.approx(2 * 9 * size)


def test_dense_size_target_ties_across_radii_are_exact():
    """Radius 2 at d² = 5 and radius 7 at d² = 45 give the same Gaussian (d² / 2σ² = 3.6 for both), which float
    arithmetic on σ² would split (5 / (2 (5/6)²) = 3.5999999999999996 against 45 / 12.5 = 3.6): the key
    d² / (2r + 1)² ties exactly, so the later slot wins that cell in either order."""
    a = (66, 66, 98, 98, 0)  # 8 x 8 cells, center cell (20, 20), radius 2
    b = (14, 22, 118, 126, 1)  # 26 x 26 cells, center cell (18, 16), radius 7
    for rows, size in [([a, b], 26.0), ([b, a], 8.0)]:
        boxes, classes = box_batch(rows)
        s = session("dense_wh", boxes, classes, zeros(40, 40))
        assert sorted(s.radius_truth()[0].tolist()) == [2, 7]
        assert s.size_dense_truth()[0, :, 21, 22].tolist() == [size, size]


def test_dense_wh_single_cell_object():
    """A tiny box has radius 0: its size is the target at its center cell only, with weight 1; loss =
    (|pred_h - h| + |pred_w - w|) / (2 + 1e-4)."""
    boxes, classes = box_batch([(9, 5, 13, 8, 1)])  # 1 x 0.75 cells, center (1.625, 2.75) -> cell (1, 2)
    preds = zeros(4, 5)
    preds["size"][0, :, 1, 2] = torch.tensor([2.0, 0.5])
    preds["size"][0, :, 0, 0] = 100.0  # weight 0 there
    s = session("dense_wh", boxes, classes, preds)
    dense = s.size_dense_truth()[0]
    assert torch.count_nonzero(dense) == 2 and dense[:, 1, 2].tolist() == [0.75, 1.0]
    assert float(s.size_loss()) == pytest.approx((1.25 + 0.5) / (2 + 1e-4), rel=1e-6)


def test_norm_wh_by_hand():
    """Size (2, 4) cells; prediction (3, 2) at the center: (|3 / 2.0001 - 1| + |2 / 4.0001 - 1|) / (2 + 1e-4)."""
    boxes, classes = box_batch([(8, 8, 24, 16, 0), (0, 0, 0, 0, -1)])  # 2 x 4 cells, center cell (3, 4)
    preds = zeros(6, 8)
    preds["size"][0, :, 3, 4] = torch.tensor([3.0, 2.0])
    s = session("norm_wh", boxes, classes, preds)
    assert s.index_truth()[0, 0] == 3 * 8 + 4
    want = (abs(3 / 2.0001 - 1) + abs(2 / 4.0001 - 1)) / (2 + 1e-4)
    assert float(s.size_loss()) == pytest.approx(want, rel=1e-6)


def test_reg_loss_sl1_by_hand():
    """Size (2, 4), prediction (2.5, 6): 0.5 * 0.5² + (2 - 0.5) = 1.625; offset (0, 0.5) against (0.5, 0.5): 0.125;
    each divided by #objects + 1e-4 (1 object; the published RegLoss does not count the two channels)."""
    boxes, classes = box_batch([(8, 8, 24, 16, 0), (0, 0, 0, 0, -1)])
    preds = zeros(6, 8)
    preds["size"][0, :, 3, 4] = torch.tensor([2.5, 6.0])
    preds["offset"][0, :, 3, 4] = torch.tensor([0.0, 0.5])
    s = session("reg_loss_sl1", boxes, classes, preds)
    assert s.offset_truth()[0, 0].tolist() == [0.0, 0.0]
    assert float(s.size_loss()) == pytest.approx(1.625 / (1 + 1e-4), rel=1e-6)
    assert float(s.offset_loss()) == pytest.approx(0.125 / (1 + 1e-4), rel=1e-6)


def test_no_offset_by_hand():
    """One peak at cell (y 2, x 5) with size (2, 4): box 4 * (5.5 -+ 2, 2.5 -+ 1) = (14, 6, 30, 14); the offset
    head is no input of infer or train and the offset loss is exactly 0."""
    mod = H.module("no_offset")
    infer, train = mod.Infer(num_classes=C, top_k=1), mod.Train(num_classes=C)
    assert list(inspect.signature(infer.forward).parameters) == ["heatmap", "size"]
    assert "offset" not in inspect.signature(train.forward).parameters
    heat = torch.full((1, C, 6, 8), -10.0)
    heat[0, 1, 2, 5] = 3.0
    size = torch.zeros(1, 2, 6, 8)
    size[0, :, 2, 5] = torch.tensor([2.0, 4.0])
    det = infer(heat, size)
    assert det["boxes_pred"][0, 0].tolist() == [14.0, 6.0, 30.0, 14.0] and int(det["classes_pred"][0, 0]) == 1
    boxes, classes = box_batch([(8, 8, 24, 16, 0)])
    out = H.call(train, boxes=boxes, classes=classes, **zeros(6, 8))
    assert out["offset_loss"].shape == () and float(out["offset_loss"]) == 0.0
    assert float(out["loss"]) == pytest.approx(float(out["heat_loss"]) + 0.1 * float(out["size_loss"]), rel=1e-6)


# ---------------------------------------------------------------- hypothesis box sets against the reference

@settings(max_examples=30, deadline=None)
@given(H.annotations(num_classes=C))
def test_switch_losses_match_reference(sample):
    boxes, classes, h, w = sample
    preds = H.predictions(boxes.shape[0], C, h, w, seed=h * 31 + w)
    for variant in SWITCHES:
        got = H.call(H.entry(variant, "train", num_classes=C), boxes=boxes, classes=classes, **preds)
        want = reference_losses(variant, boxes, classes, preds, h, w)
        assert got.keys() == want.keys()
        for key in want:
            assert float(got[key]) == pytest.approx(want[key], rel=2e-5, abs=1e-6), (variant, key)


@settings(max_examples=40, deadline=None)
@given(H.annotations(num_classes=C, max_m=16))
def test_dense_size_target_matches_reference(sample):
    boxes, classes, h, w = sample
    s = session("dense_wh", boxes, classes, H.predictions(boxes.shape[0], C, h, w))
    got = s.size_dense_truth()
    assert got.shape == (boxes.shape[0], 2, h, w) and got.dtype == torch.float32
    for i in range(boxes.shape[0]):
        objs = ref.objects(boxes[i].numpy(), classes[i].numpy(), h, w, CFG)
        np.testing.assert_array_equal(got[i].numpy(), ref.dense_size_target(objs, h, w))
        # the target is nonzero exactly where the loss weight (class-max heat map) is
        covered = s.heat_truth()[i].amax(0) > 0
        assert torch.equal(covered, (got[i] > 0).all(0)), "dense target and weight disagree"


@settings(max_examples=20, deadline=None)
@given(H.annotations(num_classes=C))
def test_no_offset_decodes_at_cell_centers(sample):
    boxes, classes, h, w = sample
    n = boxes.shape[0]
    preds = H.predictions(n, C, h, w, seed=h + 7 * w)
    got = H.call(H.entry("no_offset", "infer", num_classes=C, top_k=5), **preds)
    for i in range(n):  # the reference decoder with an offset map of 0.5 everywhere
        want = ref.decode(preds["heatmap"][i].numpy(), preds["size"][i].numpy(),
                          np.full((2, h, w), 0.5), dict(CFG, top_k=5))
        mine = [(s, c, b) for s, c, b in zip(got["scores_pred"][i].tolist(), got["classes_pred"][i].tolist(),
                                             got["boxes_pred"][i].tolist()) if s > 0]
        theirs = [(s, c, b) for s, c, b in want if s > 0]
        assert len(mine) == len(theirs)
        for s, c, b in mine:  # equal float32 scores may come in any order
            j = next(j for j, (s2, c2, b2) in enumerate(theirs)
                     if c2 == c and abs(s2 - s) <= 1e-6 * max(s, 1e-3) and np.allclose(b2, b, rtol=1e-5, atol=1e-4))
            theirs.pop(j)


# ---------------------------------------------------------------- scripting, gradients, what stays the same

def realistic():
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 30.0], [50.0, 20.0, 70.0, 60.0], [-10.0, 40.0, 12.0, 90.0], [0, 0, 0, 0],
                           [10.0, 12.0, 36.0, 28.0]],
                          [[30.0, 30.0, 31.0, 32.0], [20.0, 4.0, 79.0, 95.0], [1.0, 1.0, 5.0, 9.0], [9, 9, 20, 20],
                           [18.0, 2.0, 80.0, 90.0]]])
    classes = torch.tensor([[0, 2, 1, -1, 1], [3, 3, 0, 7, 3]])
    return dict(H.predictions(2, C, 24, 20, seed=9), grid=[24, 20], boxes=boxes, classes=classes)


@pytest.mark.parametrize("variant", SWITCHES)
def test_switch_scripts_and_matches_eager(variant):
    inputs = realistic()
    for name in ["train", "infer", "targets"]:
        eager = H.entry(variant, name, num_classes=C, top_k=30)
        want, got = H.call(eager, **inputs), H.call(torch.jit.script(eager), **inputs)
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), (variant, name, key)
    if variant == "dense_wh":
        eager = session(variant, inputs["boxes"], inputs["classes"], H.predictions(2, C, 24, 20, seed=9))
        scripted = torch.jit.script(H.module(variant).Session(num_classes=C))
        scripted.bind(**inputs)
        assert torch.equal(eager.size_dense_truth(), scripted.size_dense_truth())
        assert float(eager.size_dense_truth().abs().sum()) > 0


@pytest.mark.parametrize("variant", SWITCHES)
def test_switch_changes_only_its_terms(variant):
    """Everything the switch does not override equals base: targets, and the infer outputs except no-offset's boxes."""
    inputs = realistic()
    for name in ["targets", "infer", "train"]:
        base = H.call(H.entry("base", name, num_classes=C, top_k=30), **inputs)
        got = H.call(H.entry(variant, name, num_classes=C, top_k=30), **inputs)
        changed = {"train": {"dense_wh": {"size_loss", "loss"}, "norm_wh": {"size_loss", "loss"},
                             "reg_loss_sl1": {"size_loss", "offset_loss", "loss"},
                             "no_offset": {"offset_loss", "loss"}}[variant],
                   "infer": {"boxes_pred"} if variant == "no_offset" else set(), "targets": set()}[name]
        for key in base:
            assert torch.equal(base[key], got[key]) != (key in changed), (variant, name, key)


@pytest.mark.parametrize("variant", SWITCHES)
def test_switch_gradients_finite_with_nan_outside_the_mask(variant):
    """Gradients reach the size (and offset) head, finite even where unmasked cells of the maps hold NaN."""
    inputs = realistic()
    preds = {k: inputs[k].clone() for k in ["heatmap", "size", "offset", "class_size"]}
    heat = session("base", inputs["boxes"], inputs["classes"], preds).heat_truth().amax(1)
    for k in ["size", "offset"]:
        preds[k][:, 0][heat == 0] = float("nan")  # the dense weight is 0 there, and no center cell is there
    preds = {k: v.requires_grad_() for k, v in preds.items()}
    out = H.call(H.entry(variant, "train", num_classes=C), boxes=inputs["boxes"], classes=inputs["classes"], **preds)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    heads = ["heatmap", "size"] + ([] if variant == "no_offset" else ["offset"])
    for name in heads:
        assert torch.isfinite(preds[name].grad).all() and preds[name].grad.abs().sum() > 0, (variant, name)
    if variant == "no_offset":
        assert preds["offset"].grad is None


def test_switches_on_an_empty_batch():
    """No valid object: every size / offset loss is 0 (not NaN), the dense target is all 0."""
    preds = H.predictions(2, C, 6, 5)
    for m in [0, 3]:
        boxes, classes = torch.zeros(2, m, 4), torch.full((2, m), -1)
        for variant in SWITCHES:
            out = H.call(H.entry(variant, "train", num_classes=C), boxes=boxes, classes=classes, **preds)
            assert float(out["size_loss"]) == 0.0 and float(out["offset_loss"]) == 0.0, (variant, m)
        assert float(session("dense_wh", boxes, classes, preds).size_dense_truth().abs().sum()) == 0.0


def test_dense_size_target_crowded_scene_scripted():
    """60 boxes of 4-120 px on a 32 x 40 grid, 2 images (most cells under several windows), TorchScript Session:
    the dense target equals the reference, and the dense loss too."""
    rng = np.random.default_rng(3)
    n, m, h, w = 2, 60, 32, 40
    xy = rng.uniform(-8, 150, (n, m, 2))
    boxes = torch.from_numpy(np.concatenate([xy, xy + rng.uniform(4, 120, (n, m, 2))], 2).astype(np.float32))
    classes = torch.from_numpy(rng.integers(-1, C, (n, m)))
    preds = H.predictions(n, C, h, w, seed=4)
    s = torch.jit.script(H.module("dense_wh").Session(num_classes=C))
    s.bind(boxes=boxes, classes=classes, grid=[h, w], **preds)
    objs = [ref.objects(boxes[i].numpy(), classes[i].numpy(), h, w, CFG) for i in range(n)]
    want = np.stack([ref.dense_size_target(o, h, w) for o in objs])
    np.testing.assert_array_equal(s.size_dense_truth().numpy(), want)
    heat = s.heat_truth().numpy()
    assert (heat.max(1) > 0).mean() > 0.5
    assert float(s.size_loss()) == pytest.approx(ref.dense_l1(preds["size"].numpy(), want, heat), rel=2e-5)


def test_published_precision_quirk_is_not_reproduced():
    """The published draw order lets an object write its size where its float64 Gaussian is >= the float32 heat
    map just drawn, which fails wherever float32 rounding went up: an isolated radius-2 object would leave 16 of
    its 25 cells at size 0 with a positive weight. The mixin fills the whole window (docs/centernet.md)."""
    r, sigma = 2, 5 / 6.0
    d = np.arange(-r, r + 1)
    g = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma * sigma))
    assert int((g < g.astype(np.float32).astype(np.float64)).sum()) == 16
    boxes, classes = box_batch([(8, 8, 40, 40, 0)])  # 8 x 8 cells: radius int(2.19) = 2
    s = session("dense_wh", boxes, classes, zeros(12, 12))
    assert s.radius_truth().tolist() == [[2]]
    assert int((s.size_dense_truth()[0] == 8.0).all(0).sum()) == 25


@pytest.mark.parametrize("variant,name", [("dense_wh", "train"), ("no_offset", "infer")])
def test_switch_exports_equal_eager(variant, name):
    """torch.export of the dense target (full-grid windows while tracing) and of the offset-free decoding."""
    inputs = realistic()
    eager = H.entry(variant, name, num_classes=C, top_k=30)
    args = tuple(inputs[p] for p in inspect.signature(eager.forward).parameters)
    program = torch.export.export(eager, args)
    want, got = eager(*args), program.module()(*args)
    for key in want:
        assert torch.equal(want[key], got[key]), key


# ---------------------------------------------------------------- through the generic runtime (train/centernet.py)

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from train.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("cn_switch_data")
    write_dataset(root, 8, 4, (64, 64), seed=5, crowd_prob=0.0)
    return root


@pytest.mark.parametrize("variant", ["dense-wh", "norm-wh", "reg-loss-sl1", "no-offset"])
def test_switch_trains_and_evaluates(synthetic, tmp_path, variant):
    """Two steps and an evaluation with `om.variant=<switch>`: the runtime needs nothing switch-specific."""
    from train import centernet as Cn

    cfg = {
        "seed": 0, "out_dir": str(tmp_path / "run"), "threads": 1,
        "om": {"spec": "specs/centernet.yaml", "variant": variant, "targets": "inline", "config": {}},
        "data": {"dataset": "coco_panoptic", "root": str(synthetic), "train_split": "train", "val_split": "val",
                 "crop_size": [64, 64], "scale_range": [0.9, 1.1], "flip_prob": 0.5},
        "model": {"backbone": "resnet18", "backbone_width": 8, "neck_channels": 16, "head_channels": 16},
        "train": {"steps": 2, "batch_size": 4, "lr": 1e-3, "workers": 0, "log_every": 1, "tensorboard": False,
                  "progress": False},
        "eval": {"batch_size": 4},
    }
    steps = []
    result = Cn.run_training(cfg, evaluate=True, on_step=lambda step, losses: steps.append(losses))
    assert result["step"] == 2 and len(steps) == 2
    for losses in steps:
        assert set(losses) == {"loss", "heat_loss", "size_loss", "offset_loss"}
        assert all(np.isfinite(v) for v in losses.values())
        if variant == "no-offset":
            assert losses["offset_loss"] == 0.0
    assert result["eval"]["images"] == 4 and 0.0 <= result["eval"]["ap"] <= 100.0


def test_relative_l1_ignores_nan_and_minus_eps_targets_outside_the_mask():
    """Unmasked entries may hold anything: no NaN in the value or the gradient (target -1e-4 would divide by 0)."""
    from generated.centernet import norm_wh

    pred = torch.ones(1, 2, 2, requires_grad=True)
    target = torch.tensor([[[2.0, 4.0], [float("nan"), -1e-4]]])
    loss = norm_wh.masked_relative_l1(pred, target, torch.tensor([[1.0, 0.0]]))
    loss.backward()
    want = (abs(1 / (2 + 1e-4) - 1) + abs(1 / (4 + 1e-4) - 1)) / (2 + 1e-4)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    assert torch.isfinite(pred.grad).all() and float(pred.grad[0, 1].abs().sum()) == 0.0
