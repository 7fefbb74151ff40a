"""Every loss term of every loss variant against the loop reference."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import centernet_helpers as H
import centernet_reference as ref

C = 3
CFG = dict(ref.DEFAULTS, num_classes=C)


def reference_losses(variant, boxes, classes, preds, h, w):
    n = boxes.shape[0]
    fn = ref.radius_corrected if variant == "radius_fix" else ref.radius_published
    objs = [ref.objects(boxes[i].numpy(), classes[i].numpy(), h, w, CFG, fn) for i in range(n)]
    heat = np.stack([ref.heat_target(o, h, w, CFG) for o in objs])
    prob = torch.sigmoid(preds["heatmap"]).numpy()
    if variant == "mse_heatmap":
        heat_loss = ref.mse_loss(prob, heat)
    else:
        heat_loss = ref.focal_loss(prob, heat, 2.0, 4.0)
    if variant == "class_specific_size":
        size_loss = ref.reg_l1_class(preds["class_size"].numpy(), objs, "size")
    else:
        size_loss = ref.reg_l1(preds["size"].numpy(), objs, "size")
    offset_loss = ref.reg_l1(preds["offset"].numpy(), objs, "offset")
    return dict(heat_loss=heat_loss, size_loss=size_loss, offset_loss=offset_loss,
                loss=heat_loss + 0.1 * size_loss + offset_loss)


@settings(max_examples=30, deadline=None)
@given(H.annotations(num_classes=C))
def test_losses_match_reference(sample):
    boxes, classes, h, w = sample
    preds = H.predictions(boxes.shape[0], C, h, w, seed=h * 31 + w)
    for variant in ["base", "radius_fix", "mse_heatmap", "class_specific_size"]:
        got = H.call(H.entry(variant, "train", num_classes=C), boxes=boxes, classes=classes, **preds)
        want = reference_losses(variant, boxes, classes, preds, h, w)
        for key in want:
            assert float(got[key]) == pytest.approx(want[key], rel=2e-5, abs=1e-6), (variant, key)


def test_losses_on_a_full_size_batch_scripted():
    rng = np.random.default_rng(0)
    n, m, h, w = 2, 20, 32, 40
    xy = rng.uniform(0, 120, (n, m, 2))
    boxes = torch.from_numpy(np.concatenate([xy, xy + rng.uniform(2, 60, (n, m, 2))], 2).astype(np.float32))
    classes = torch.from_numpy(rng.integers(-1, C, (n, m)))
    preds = H.predictions(n, C, h, w, seed=5)
    for variant in ["base", "class_specific_size"]:
        train = torch.jit.script(H.entry(variant, "train", num_classes=C))
        got = H.call(train, boxes=boxes, classes=classes, **preds)
        want = reference_losses(variant, boxes, classes, preds, h, w)
        for key in want:
            assert float(got[key]) == pytest.approx(want[key], rel=2e-5), (variant, key)


def test_gradients_reach_every_head():
    preds = {k: v.requires_grad_() for k, v in H.predictions(1, C, 8, 8).items()}
    boxes = torch.tensor([[[4.0, 4.0, 20.0, 28.0], [0.0, 0.0, 0.0, 0.0]]])
    classes = torch.tensor([[2, -1]])
    out = H.call(H.entry("base", "train", num_classes=C), boxes=boxes, classes=classes, **preds)
    out["loss"].backward()
    for name in ["heatmap", "size", "offset"]:
        assert torch.isfinite(preds[name].grad).all() and preds[name].grad.abs().sum() > 0, name


def test_empty_batch_losses():
    """No valid object: the focal loss is the negative part alone (divided by 1), size / offset losses are 0."""
    preds = H.predictions(2, C, 6, 5)
    boxes = torch.zeros(2, 0, 4)
    classes = torch.zeros(2, 0, dtype=torch.long)
    got = H.call(H.entry("base", "train", num_classes=C), boxes=boxes, classes=classes, **preds)
    prob = torch.sigmoid(preds["heatmap"]).numpy()
    assert float(got["heat_loss"]) == pytest.approx(ref.focal_loss(prob, np.zeros_like(prob)), rel=1e-5)
    assert float(got["size_loss"]) == 0.0 and float(got["offset_loss"]) == 0.0
