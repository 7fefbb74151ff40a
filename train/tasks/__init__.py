"""Tasks: one OM spec + the network, data, evaluation and deployment around it (see train/tasks/base.py).

``TASKS`` maps the config's ``task:`` to its Task; ``task_of(cfg)`` picks it
(a config without ``task:`` is read by the spec it names, so configs written
before tasks existed keep working: specs/centernet.yaml -> detection,
specs/pose.yaml -> pose, anything else -> panoptic).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from runtime.config import ConfigError

from .base import DeploySpec, Task
from .detection import DetectionTask
from .panoptic import PanopticTask
from .pose import PoseTask

__all__ = ["TASKS", "Task", "DeploySpec", "task_of", "get_task"]

TASKS: Dict[str, Task] = {t.name: t for t in (PanopticTask(), DetectionTask(), PoseTask())}
_BY_SPEC = {"centernet": "detection", "pose": "pose", "panoptic": "panoptic"}


def get_task(name: str) -> Task:
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"task: unknown {name!r} ({', '.join(sorted(TASKS))}){hint}")
    return TASKS[name]


def task_of(cfg: Mapping[str, Any], default: Optional[str] = None) -> Task:
    """The config's task: ``task:``, else ``default``, else the one of the spec it names."""
    name = cfg.get("task") or default
    if name is None:
        spec = Path(str((cfg.get("om") or {}).get("spec", "specs/panoptic.yaml"))).stem
        name = _BY_SPEC.get(spec, "panoptic")
    return get_task(str(name))
