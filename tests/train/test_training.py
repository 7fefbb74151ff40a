"""train/visualize.py and the demo command (tiny settings)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from train.visualize import heatmap, offset_field, panoptic_colors, save_sample

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _ids():
    ids = np.full((16, 16), 0, np.int64)          # stuff class 0
    ids[8:] = 2000                                # stuff class 2
    ids[2:6, 2:6] = 1001                          # class 1, instance 1
    ids[2:6, 10:14] = 1002                        # class 1, instance 2
    ids[12:, 12:] = 255000                        # void
    return ids


def test_panoptic_colors_separate_classes_and_instances_void_black():
    rgb = panoptic_colors(_ids())
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert (rgb[14, 14] == 0).all()                               # void
    assert not (rgb[0, 8] == rgb[10, 8]).all()                    # two stuff classes
    assert not (rgb[3, 3] == rgb[3, 11]).all()                    # two instances of one class
    assert (rgb[2, 3] == 255).all()                               # instance border
    assert (panoptic_colors(torch.from_numpy(_ids())[None]) == rgb).all()  # torch [1, H, W] too
    # with num_classes, a class keeps its colour whatever else the image holds
    only_two = np.full((4, 4), 2000, np.int64)
    assert (panoptic_colors(only_two, num_classes=6)[0, 0] == panoptic_colors(_ids(), num_classes=6)[10, 8]).all()


def test_heatmap_and_offset_field():
    h = heatmap(torch.linspace(0, 1, 64).reshape(8, 8), vmax=1.0)
    assert h.shape == (8, 8, 3) and not (h[0, 0] == h[-1, -1]).all()
    off = torch.zeros(2, 8, 8)
    off[0, :, 4:] = 3.0                                           # dy > 0 on the right half
    f = offset_field(off)
    assert (f[:, :4] == 0).all() and (f[:, 4:].max(-1) > 0).all()  # zero offsets are black
    mask = np.zeros((8, 8), bool)
    assert (offset_field(off, mask=mask) == 0).all()


def test_save_sample_writes_pngs(tmp_path):
    import cv2

    image = torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8)
    paths = save_sample(tmp_path, "s", image, _ids(), _ids(), center=torch.rand(1, 16, 16),
                        offsets=torch.randn(2, 16, 16), centers=torch.tensor([[4.0, 4.0], [4.0, 12.0]]),
                        center_valid=torch.tensor([True, False]))
    assert set(paths) == {"overlay", "truth", "center", "offsets", "panel"}
    for name in ("overlay", "truth", "center", "offsets"):  # the tiles at the image's size
        assert cv2.imread(str(paths[name])).shape == (16, 16, 3)
    panel = cv2.imread(str(paths["panel"]))  # the titled figure (tests/train/test_visualize.py)
    assert panel.shape[1] >= 1000 and panel.shape[0] >= 300


def test_demo_command_end_to_end(tmp_path, capsys):
    from test_cli import TINY
    from train.cli import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(root=tmp_path / "unused", targets="inline", workers=0))
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(cfg), "--out", str(out), "--set", "train.steps=2",
                 "--set", "eval.visualize=1", "--set", "train.time_budget_s=600"]) == 0
    text = capsys.readouterr().out
    assert "demo: PQ" in text
    summary = json.loads((out / "demo.json").read_text())
    assert 0.0 <= summary["pq"] <= 100.0 and summary["steps"] == 2
    assert (out / "data" / "annotations" / "panoptic_val.json").exists()   # generated
    assert (out / "visuals" / "val_000_panel.png").exists()
    program = torch.jit.load(str(out / "model.ts"))  # the deployable program of train/deploy.py
    result = program(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert result["panoptic"].shape == (1, 1, 64, 64) and result["semantic"].shape == (1, 1, 64, 64)
