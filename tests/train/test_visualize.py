"""The pictures a user looks at: the per-image panel (titled tiles, a legend of the dataset's colours and names)
and the training curves (runtime.plots), checked on the written PNGs against hand-made inputs."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.plots import curve_series, read_metrics, write_curves
from train.data.synthetic import CATEGORIES
from train.visualize import class_legend, dataset_palette, save_sample

NAMES = [c["name"] for c in CATEGORIES]        # sky, ellipse, wall, rectangle, ground, triangle
COLORS = [tuple(c["color"]) for c in CATEGORIES]
H, W = 48, 64


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Prediction: sky (0), wall (2), two rectangles (3); truth: sky, ground (4), one ellipse (1), a void strip."""
    pred = np.zeros((H, W), np.int64)
    pred[24:] = 2 * 1000
    pred[5:20, 5:25] = 3 * 1000 + 1
    pred[28:44, 30:60] = 3 * 1000 + 2
    truth = np.zeros((H, W), np.int64)
    truth[24:] = 4 * 1000
    truth[5:20, 5:25] = 1 * 1000 + 1
    truth[:2] = 255 * 1000
    return pred, truth


def _rgb(path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image[:, :, ::-1]


def _solid(image: np.ndarray, rgb) -> int:
    """Pixels exactly of colour ``rgb`` (legend patches are drawn solid; the tiles blend colours into the image)."""
    return int((image == np.asarray(rgb, np.uint8)).all(-1).sum())


def test_legend_lists_the_classes_present_in_train_id_order_with_void_last():
    pred, truth = _scene()
    palette = dataset_palette(COLORS)
    assert class_legend([pred, truth], NAMES, palette) == [
        ("sky", COLORS[0]), ("ellipse", COLORS[1]), ("wall", COLORS[2]), ("rectangle", COLORS[3]),
        ("ground", COLORS[4]), ("void", (0, 0, 0))]
    assert class_legend([pred], NAMES, palette) == [("sky", COLORS[0]), ("wall", COLORS[2]),
                                                    ("rectangle", COLORS[3])]


def test_datasets_without_colours_get_the_hue_palette():
    assert dataset_palette([(0, 0, 0)] * 3) is None and dataset_palette(()) is None
    assert dataset_palette(COLORS).tolist() == [list(c) for c in COLORS]


def test_panel_has_every_tile_titled_a_legend_in_the_dataset_colours_and_the_centers(tmp_path):
    pred, truth = _scene()
    image = torch.full((3, H, W), 90, dtype=torch.uint8)
    offsets = torch.zeros(2, H, W)
    offsets[0, 5:20, 5:25], offsets[1, 5:20, 5:25] = 4.0, -3.0
    paths = save_sample(tmp_path, "val_007", image, pred, truth, center=torch.rand(1, H, W), offsets=offsets,
                        centers=torch.tensor([[12.0, 15.0], [36.0, 45.0], [0.0, 0.0]]),
                        center_valid=torch.tensor([True, True, False]), num_classes=6, class_names=NAMES,
                        class_colors=COLORS)
    panel = _rgb(paths["panel"])
    assert panel.shape[1] >= 1000 and panel.shape[0] >= 340  # readable: tiles 340 px tall, in rows of 18 inches
    for name, rgb in zip(NAMES, COLORS):  # a solid legend patch for each class present, none for the others
        present = name in ("sky", "ellipse", "wall", "rectangle", "ground")
        assert (_solid(panel, rgb) >= 150) == present, (name, _solid(panel, rgb))
    # the tiles at the image's size beside it; the prediction overlay carries the dataset's rectangle colour
    overlay = _rgb(paths["overlay"])
    assert overlay.shape == (H, W, 3)
    inside = overlay[30:40, 35:55].reshape(-1, 3).mean(0)
    assert np.abs(inside - (0.45 * 90 + 0.55 * np.asarray(COLORS[3]))).max() < 40
    # a different prediction draws a different panel (the figure shows the data, not a template)
    other = save_sample(tmp_path, "val_008", image, truth, truth, num_classes=6, class_names=NAMES,
                        class_colors=COLORS)
    assert _rgb(other["panel"]).shape != panel.shape or not np.array_equal(_rgb(other["panel"]), panel)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a renamed temporary file


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=0, max_size=300))
def test_any_class_name_draws(tmp_path, name):
    """A stranger's category names reach the figure as text: ``$...$`` is not read as math, control characters
    and very long names are drawn without an error."""
    pred, truth = _scene()
    names = [name, "$\\frac{", "a\\$b$", "\x00\n\r", "x" * 500, "$x^$"]
    paths = save_sample(tmp_path, "s", torch.zeros(3, H, W, dtype=torch.uint8), pred, truth, num_classes=6,
                        class_names=names, class_colors=COLORS)
    assert _rgb(paths["panel"]).std() > 10


RECORDS = [
    {"kind": "train", "step": 1, "time": 1.0, "loss": 3.0, "semantic_loss": 2.0, "lr": 0.1, "images_per_s": 9.0},
    {"kind": "train", "step": 2, "time": 2.0, "loss": 2.0, "semantic_loss": 1.5, "lr": 0.1, "images_per_s": 9.0},
    {"kind": "timing", "step": 2, "data_share": 0.5},
    {"kind": "train", "step": 3, "time": 3.0, "loss": "nan", "semantic_loss": 1.0},
    {"kind": "eval", "step": 3, "time": 4.0, "pq": 41.5, "images": 4, "eval_seconds": 1.0, "per_class_pq": [1, 2]},
]


def test_curve_series_are_the_loss_terms_and_metrics_of_the_file():
    losses, metrics = curve_series(RECORDS)
    assert losses == {"loss": [(1, 3.0), (2, 2.0)], "semantic_loss": [(1, 2.0), (2, 1.5), (3, 1.0)]}
    assert metrics == {"pq": [(3, 41.5)]}


def test_curves_png_is_written_or_nothing_when_there_is_nothing_to_draw(tmp_path):
    path = write_curves(tmp_path / "curves.png", RECORDS, title="run", extra_metrics={"pq": 40.0}, extra_step=3)
    image = _rgb(path)
    assert image.shape == (420, 1200, 3) and image.std() > 10
    assert write_curves(tmp_path / "none.png", [{"kind": "timing", "step": 1}]) is None
    assert not (tmp_path / "none.png").exists()


def test_read_metrics_skips_what_is_not_a_record_and_refuses_what_is_not_a_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join([json.dumps(RECORDS[0]), "not json", "[1, 2]", "[" * 100000, json.dumps(RECORDS[1])]))
    assert read_metrics(path) == RECORDS[:2]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_metrics(fifo) == []          # not opened: a FIFO would block
    assert read_metrics(tmp_path) == [] and read_metrics(tmp_path / "missing") == []


@pytest.mark.parametrize("asked", [True, False])
def test_the_run_says_where_metrics_go(tmp_path, asked):
    from runtime.metrics import MetricsLogger

    logger = MetricsLogger(tmp_path, tensorboard=asked)
    try:
        line, on = logger.where(asked), logger.tensorboard
    finally:
        logger.close()
    assert line.startswith(f"metrics: {tmp_path / 'metrics.jsonl'} (curves.png at the end); TensorBoard: ")
    if not asked:
        assert line.endswith("TensorBoard: off (train.tensorboard: false)")
    elif not on:
        assert line.endswith("off (not installed: pip install 'omgen[tensorboard]')")


def test_detection_panel_draws_the_kept_boxes_in_their_class_colours(tmp_path):
    from train.visualize import _hue_palette, save_detections

    names = ["circle", "square", "star"]
    palette = _hue_palette(3)
    path = save_detections(tmp_path, "val_000", torch.full((3, 64, 96), 200, dtype=torch.uint8),
                           boxes=torch.tensor([[4.0, 4.0, 40.0, 30.0], [50.0, 10.0, 90.0, 60.0]]),
                           scores=torch.tensor([0.9, 0.1]), classes=torch.tensor([2, 1]),
                           truth_boxes=torch.tensor([[5.0, 5.0, 41.0, 31.0]]), truth_classes=torch.tensor([2]),
                           class_names=names)
    panel = _rgb(path)
    assert panel.shape[1] >= 1000
    assert _solid(panel, palette[2]) >= 150   # the star box (score 0.9) and its legend patch
    assert _solid(panel, palette[1]) < 20     # the square (score 0.1 < 0.3) is neither drawn nor listed
