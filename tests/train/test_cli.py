"""`python -m train`: train / eval / export on a tiny synthetic dataset; one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from train.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY = """
seed: 0
threads: 2
om:
  spec: specs/panoptic.yaml
  variant: synthetic
  targets: {targets}
  config: {{sigma: 2.0}}
  outputs: {{center_heatmap: center_logits, offsets: offset_logits}}
data:
  dataset: synthetic
  root: {root}
  generate: {{train: 8, val: 4, size: 64, seed: 0}}
  crop_size: [64, 64]
  scale_range: [0.75, 1.25]
model:
  arch: small
  backbone_width: 8
  overrides: {{sem_aspp_channels: 8, sem_decoder_channels: 8, sem_head_channels: 8, ins_aspp_channels: 8,
              ins_decoder_channels: 8, ins_head_channels: 8, sem_skip_channels: [8, 8], ins_skip_channels: [8, 8]}}
train: {{steps: 3, batch_size: 4, lr: 0.001, log_every: 1, ckpt_every: 2, progress: false, workers: {workers}}}
eval: {{batch_size: 4, visualize: 2}}
"""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from train.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, 8, 4, (64, 64), 0)
    (root / "generated.json").write_text(json.dumps({"train": 8, "val": 4, "size": [64, 64], "seed": 0}) + "\n")
    return root


def _config(tmp_path, root, targets="device", workers=0) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(root=root, targets=targets, workers=workers))
    return path


def _png_size(path: Path) -> tuple:
    import cv2

    image = cv2.imread(str(path))
    assert image is not None and image.std() > 10, path  # a picture, not a blank page
    return image.shape[1], image.shape[0]


def test_train_then_eval(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root, targets="loader", workers=1)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "trained to step 3" in text and "PQ " in text
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    assert [r["kind"] for r in records][-1] == "eval" and 0.0 <= records[-1]["pq"] <= 100.0
    assert sorted(p.name for p in (out / "visuals").glob("val_000_*.png")) == [
        "val_000_center.png", "val_000_offsets.png", "val_000_overlay.png", "val_000_panel.png", "val_000_truth.png"]

    assert _png_size(out / "curves.png") == (1200, 420)  # training curves, written at the end of training

    assert main(["eval", str(cfg), "--out", str(out / "eval"), "--checkpoint", str(out / "last.pt")]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["images"] == 4 and metrics["pq"] == pytest.approx(records[-1]["pq"])
    assert _png_size(out / "eval" / "curves.png") == (1200, 420)  # the run's curves and this eval
    first = {f.name: f.read_bytes() for f in (out / "eval").rglob("*") if f.is_file()}
    assert main(["eval", str(cfg), "--out", str(out / "eval"), "--checkpoint", str(out / "last.pt")]) == 0
    assert f"{out / 'eval-2'}" in capsys.readouterr().err  # a second eval gets its own folder, printed
    assert {f.name: f.read_bytes() for f in (out / "eval").rglob("*") if f.is_file()} == first  # untouched

    with pytest.raises(SystemExit):  # export needs a checkpoint (exported in the demo test)
        main(["export", str(cfg)])


def test_resume_continues_from_the_checkpoint(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root)
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=2", "--set", "eval.enabled=false"]) == 0
    assert main(["train", str(cfg), "--out", str(out), "--set", "train.steps=3", "--set", "eval.enabled=false",
                 "--resume", "auto"]) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == [1, 2, 3]  # the second run started at step 2


def _copy(root, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(root, dst)
    return dst


@pytest.mark.parametrize("damage", ["corrupt_image", "missing_png"])
def test_bad_data_is_one_line_naming_the_file(tmp_path, data_root, capsys, damage):
    root = _copy(data_root, tmp_path)
    if damage == "corrupt_image":
        bad = root / "train" / "000003.jpg"
        bad.write_bytes(b"not a jpeg")
    else:
        bad = root / "annotations" / "panoptic_train" / "000005.png"
        bad.unlink()
    cfg = _config(tmp_path, root)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--set", "train.steps=4",
                 "--set", "train.batch_size=8"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("error: ") and str(bad) in err


def test_non_finite_loss_is_one_line(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--set", "om.config.center_loss_weight=.nan",
                 "--set", "eval.enabled=false"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: non-finite loss at step 1")


def test_config_errors_are_one_line(tmp_path, data_root, capsys):
    cfg = _config(tmp_path, data_root)
    assert main(["train", str(cfg), "--set", "train.no_such=1"]) == 1
    assert "unknown train settings" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1
    assert "no such config file" in capsys.readouterr().err
    assert main([]) == 2


def test_shipped_configs_parse():
    from runtime.config import load_config
    from train.cli import CONFIG_DIR, settings_from

    names = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
    assert {"synthetic_demo.yaml", "cityscapes_r50.yaml", "coco_r50.yaml"} <= set(names)
    for name in names:
        cfg = load_config(CONFIG_DIR / name)
        s = settings_from(cfg)
        assert s.steps > 0 and s.batch_size > 0 and cfg["om"]["variant"]
    city = settings_from(load_config(CONFIG_DIR / "cityscapes_r50.yaml"))
    assert (city.steps, city.batch_size, city.lr, city.optimizer, city.schedule) == (90000, 32, 0.001, "adam", "poly")
