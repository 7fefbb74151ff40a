"""Run configs from anywhere: numbers read as numbers, a wrong type is one line naming the key, a `base` cycle
or a file that is not a config is one line, and a command never shows a traceback for them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.config import ConfigError, load_config
from train.cli import load

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "train" / "configs" / "synthetic_demo.yaml"


@pytest.mark.parametrize("text, value", [("1e30", 1e30), ("1e-3", 1e-3), ("-2E+4", -2e4), ("0.5", 0.5), ("3", 3)])
def test_set_reads_exponent_floats_as_numbers(text, value):
    _, cfg = load(DEMO, [f"train.lr={text}"])
    assert cfg["train"]["lr"] == value and not isinstance(cfg["train"]["lr"], str)


@pytest.mark.parametrize("item, message", [
    ("train.lr=fast", r"train\.lr: expected a finite number, got 'fast'"),
    ("train.lr=.inf", r"train\.lr: expected a finite number, got inf"),
    ("train.steps=2.5", r"train\.steps: expected an integer, got 2\.5"),
    ("train.compile=maybe", r"train\.compile: expected true or false, got 'maybe'"),
    ("train.betas=[0.9, x]", r"train\.betas: expected a list of numbers"),
    ("train.grad_clip=big", r"train\.grad_clip: expected a finite number or null"),
])
def test_a_wrong_type_is_one_line_naming_the_key(item, message):
    with pytest.raises(ConfigError, match=message) as raised:
        load(DEMO, [item])
    assert "\n" not in str(raised.value) and str(DEMO) in str(raised.value)


def test_a_base_cycle_and_a_deep_chain_are_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="a cycle"):
        load_config(tmp_path / "a.yaml")
    for i in range(40):
        (tmp_path / f"c{i}.yaml").write_text(f"base: c{i + 1}.yaml\n")
    (tmp_path / "c40.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="configs deep"):
        load_config(tmp_path / "c0.yaml")


def test_files_that_are_not_configs(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(ConfigError, match="bin.yaml: not UTF-8"):
        load_config(tmp_path / "bin.yaml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)
    (tmp_path / "tag.yaml").write_text("seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="tag.yaml: not valid YAML"):
        load_config(tmp_path / "tag.yaml")


def test_the_command_line_prints_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "train", "train", str(DEMO), "--set", "train.lr=fast"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode in (1, 2)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "train.lr" in lines[0], done.stderr


def test_an_empty_split_is_an_error_naming_its_file(tmp_path):
    """An empty validation list used to evaluate to `PQ nan` with exit 0; an empty training list named no file."""
    import json
    import shutil

    fixture = ROOT / "tests" / "fixtures" / "pose"
    root = tmp_path / "coco"
    shutil.copytree(fixture, root)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(ann.read_text())
    ann.write_text(json.dumps({**data, "images": [], "annotations": []}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    config = ROOT / "train" / "configs" / "pose_coco.yaml"
    done = subprocess.run([sys.executable, "-m", "train", "eval", str(config), "--set", f"data.root={root}",
                           "--set", "om.variant=oracle-all", "--out", str(tmp_path / "eval")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip() and "warning" not in line.lower()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and str(ann) in lines[0] and "has no images" in lines[0], done.stderr
