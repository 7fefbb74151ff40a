"""`python -m train.centernet`: the detection task's old entry point, now an alias of `python -m train`.

    python -m train.centernet train CONFIG   ==   python -m train train CONFIG   (task: detection)

The task itself (datasets, network, box AP) is train/tasks/detection.py; the
names below are kept for scripts that imported them.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from train.tasks.base import model_from_checkpoint as _model_from_checkpoint
from train.tasks.base import run_training as _run_training
from train.tasks.base import settings_from as _settings_from
from train.tasks.detection import DEFAULT_OUTPUTS, DetectionTask, collate_with_grid, make_collate  # noqa: F401

TASK = DetectionTask()


def build_dataset(cfg, split: str, *, train: bool):
    return TASK.dataset(cfg, split, train=train)


def build_model(cfg: Dict[str, Any], num_classes: int):
    class _Classes:  # the task reads the number of classes from the dataset
        pass

    ds = _Classes()
    ds.num_classes = num_classes
    return TASK.model(cfg, ds)


def make_evaluator(cfg, val_ds, out_dir=None):
    from pathlib import Path

    return TASK.evaluator(cfg, val_ds, Path(out_dir or cfg.get("out_dir", TASK.default_out)))


def settings_from(cfg):
    return _settings_from(cfg, TASK.default_out)


def run_training(cfg: Dict[str, Any], **kwargs):
    return _run_training(TASK, cfg, **kwargs)


def load_weights(network, path) -> None:
    TASK.load_weights(network, path)


def model_from_checkpoint(cfg, path):
    return _model_from_checkpoint(TASK, cfg, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from train.cli import main as train_main

    return train_main(argv, prog="python -m train.centernet", default_task="detection")


if __name__ == "__main__":
    raise SystemExit(main())
