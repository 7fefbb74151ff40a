"""Bad input: each case has a documented behaviour (docs/centernet.md, "Invalid input").

Invalid annotations (zero or negative size, entirely outside the image, class outside [0, C), NaN or infinite
coordinates, padding) are dropped: valid_truth / mask_truth 0, every target 0 in their slot, and the heat map
and the losses equal those of the batch without them. Wrong shapes and dtypes are a one-line ValueError at the
entrypoint, naming the input.
"""
import math

import pytest
import torch

import centernet_helpers as H

C = 3
GOOD = [[8.0, 8.0, 40.0, 30.0, 0], [50.0, 20.0, 70.0, 60.0, 2], [-10.0, 40.0, 12.0, 90.0, 1]]  # last: border-cut
BAD = {
    "zero width": [20.0, 20.0, 20.0, 40.0, 1],
    "negative size": [40.0, 40.0, 30.0, 20.0, 0],
    "outside right": [90.0, 10.0, 120.0, 30.0, 1],  # image is 80 x 96 px (20 x 24 cells)
    "outside top": [10.0, -50.0, 30.0, -1.0, 1],
    "class too large": [10.0, 10.0, 30.0, 30.0, C],
    "class 1000": [10.0, 10.0, 30.0, 30.0, 1000],
    "negative class": [10.0, 10.0, 30.0, 30.0, -7],
    "padding": [0.0, 0.0, 0.0, 0.0, -1],
    "nan": [float("nan"), 10.0, 30.0, 30.0, 1],
    "all nan": [float("nan")] * 4 + [0],
    "inf": [10.0, 10.0, float("inf"), 30.0, 1],
}
H_, W_ = 24, 20  # grid: 96 x 80 px input


def batch(rows):
    boxes = torch.tensor([[r[:4] for r in rows]], dtype=torch.float32).view(1, len(rows), 4)
    classes = torch.tensor([[r[4] for r in rows]], dtype=torch.long).view(1, len(rows))
    return boxes, classes


def run(variant, name, rows, scripted=False):
    module = H.entry(variant, name, num_classes=C)
    if scripted:
        module = torch.jit.script(module)
    boxes, classes = batch(rows)
    preds = H.predictions(1, C, H_, W_, seed=4)
    return H.call(module, boxes=boxes, classes=classes, **preds)


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_annotation_is_dropped(case):
    rows = GOOD[:2] + [BAD[case]] + GOOD[2:]
    targets = run("base", "targets", rows)
    assert targets["valid_truth"][0].tolist() == [True, True, False, True]
    for key in ["size_truth", "offset_truth", "index_truth", "mask_truth", "radius_truth"]:
        assert bool((targets[key][0, 2] == 0).all()), key
    clean = run("base", "targets", GOOD)
    assert torch.equal(targets["heat_truth"], clean["heat_truth"])
    for key in ["size_map_truth", "offset_map_truth"]:
        assert torch.equal(targets[key], clean[key])
    for variant in ["base", "mse_heatmap", "class_specific_size"]:
        losses, want = run(variant, "train", rows, scripted=True), run(variant, "train", GOOD)
        for key in want:
            assert torch.isfinite(losses[key]) and float(losses[key]) == pytest.approx(float(want[key]), rel=1e-6), key


def test_border_cut_box_is_clipped_to_the_image():
    targets = run("base", "targets", GOOD)
    # (-10, 40, 12, 90) px -> x clipped to [0, 3] cells, y [10, 22.5]
    assert targets["size_truth"][0, 2].tolist() == [12.5, 3.0]
    assert targets["offset_truth"][0, 2].tolist() == [0.25, 0.5]
    assert int(targets["index_truth"][0, 2]) == 16 * W_ + 1


def test_all_invalid_and_empty_annotation_lists():
    for rows in ([BAD["padding"]] * 3, list(BAD.values())):
        targets = run("base", "targets", rows)
        assert not bool(targets["valid_truth"].any()) and float(targets["heat_truth"].abs().sum()) == 0.0
        losses = run("base", "train", rows)
        assert float(losses["size_loss"]) == 0.0 and float(losses["offset_loss"]) == 0.0
        assert math.isfinite(float(losses["heat_loss"])) and float(losses["heat_loss"]) > 0
    preds = H.predictions(2, C, H_, W_)
    empty = dict(boxes=torch.zeros(2, 0, 4), classes=torch.zeros(2, 0, dtype=torch.long))
    for variant in H.VARIANTS:
        for name in ["train", "targets", "infer"]:
            out = H.call(torch.jit.script(H.entry(variant, name, num_classes=C)), **preds, **empty)
            assert all(bool(torch.isfinite(v.float()).all()) for v in out.values()), (variant, name)


@pytest.mark.parametrize("change,message", [
    (dict(classes=torch.zeros(1, 4)), "input 'classes': expected dtype long, got float32"),
    (dict(classes=torch.zeros(1, 4, dtype=torch.int32)), "input 'classes': expected dtype long, got int32"),
    (dict(boxes=torch.zeros(1, 4, 4, dtype=torch.long)), "input 'boxes': expected dtype float, got int64"),
    (dict(boxes=torch.zeros(1, 4, 5)), "input 'boxes': expected shape [N, M, 4], got shape [1, 4, 5]"),
    (dict(boxes=torch.zeros(2, 4, 4)), "input 'boxes': expected shape [N, M, 4], got shape [2, 4, 4] (N = 1"),
    (dict(classes=torch.zeros(1, 3, dtype=torch.long)), "input 'classes': expected shape [N, M], got shape [1, 3] (M = 4"),
    (dict(heatmap=torch.zeros(1, C + 1, H_, W_)), "input 'heatmap': expected shape [N, num_classes, h, w]"),
    (dict(size=torch.zeros(1, 2, H_, W_ + 1)), "input 'size': expected shape [N, 2, h, w], got shape [1, 2, 24, 21] (w = 20"),
])
def test_wrong_shapes_and_dtypes_are_one_line_errors(change, message):
    boxes, classes = batch(GOOD + [BAD["padding"]])
    inputs = dict(H.predictions(1, C, H_, W_), boxes=boxes, classes=classes)
    inputs.update(change)
    for module in (H.entry("base", "train", num_classes=C), torch.jit.script(H.entry("base", "train", num_classes=C))):
        with pytest.raises(Exception) as info:
            H.call(module, **inputs)
        assert message in str(info.value)
