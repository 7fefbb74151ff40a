"""One schema per task: every key of a run config is known, checked once, before anything runs.

An unknown key is one line naming the config file and the dotted key, with the
closest known key of that section (``did you mean data.flip_prob?``). Sections
whose keys belong to someone else (``om.config``: the OM's own config, checked
by the OM; ``model.overrides``: the network's constructor) are not walked.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import typing
from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Optional

from runtime.config import ConfigError
from runtime.trainer import TrainSettings

if TYPE_CHECKING:
    from .base import Task

TOP_KEYS = ("task", "seed", "out_dir", "threads", "om", "data", "model", "train", "eval")
OM_KEYS = ("spec", "variant", "targets", "config", "config_from", "outputs", "truth", "network_inputs", "compile")
COMMON_DATA_KEYS = ("dataset", "root", "train_split", "val_split", "generate")
COMMON_EVAL_KEYS = ("enabled", "batch_size", "limit")


def schema_of(task: "Task") -> Dict[str, Any]:
    """The task's config schema: section -> known keys (None: a free mapping)."""
    train_keys = tuple(f.name for f in dataclasses.fields(TrainSettings))
    return {
        "om": {k: (None if f"om.{k}" in task.free_keys else ()) for k in OM_KEYS},
        "data": {k: (None if f"data.{k}" in task.free_keys else ()) for k in COMMON_DATA_KEYS + task.data_keys},
        "model": {k: (None if f"model.{k}" in task.free_keys else ()) for k in task.model_keys},
        "train": {k: () for k in train_keys},
        "eval": {k: () for k in COMMON_EVAL_KEYS + task.eval_keys},
        **{k: () for k in ("task", "seed", "out_dir", "threads")},
    }


TRAIN_TYPES = typing.get_type_hints(TrainSettings)


def _type_problem(expected: Any, value: Any) -> str:
    """'' when value fits the TrainSettings annotation, else what was expected (one line's worth)."""
    if typing.get_origin(expected) is typing.Union:
        options = [t for t in typing.get_args(expected) if t is not type(None)]
        if value is None:
            return ""
        problems = [_type_problem(t, value) for t in options]
        return "" if "" in problems else " or ".join(problems) + " or null"
    if typing.get_origin(expected) in (collections.abc.Sequence, list, tuple):
        (item,) = typing.get_args(expected)[:1] or (Any,)
        if not isinstance(value, (list, tuple)) or any(_type_problem(item, v) for v in value):
            return f"a list of {({float: 'numbers', int: 'integers', str: 'strings'}).get(item, 'values')}"
        return ""
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return "" if ok else "a finite number"
    if expected is int:
        return "" if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if expected is bool:
        return "" if isinstance(value, bool) else "true or false"
    if expected is str:
        return "" if isinstance(value, str) else "a string"
    return ""


def _hint(key: str, known: Iterable[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else f"; known: {', '.join(sorted(known))}"


def validate(cfg: Mapping[str, Any], task: "Task", source: Optional[str] = None) -> None:
    """Raise ConfigError (one line) on the first unknown key, in sorted order."""
    where = f"{source}: " if source else ""
    schema = schema_of(task)
    for key in sorted(cfg):
        if key not in schema:
            raise ConfigError(f"{where}unknown key {key!r}{_hint(key, schema, '')}")
        sub = schema[key]
        value = cfg[key]
        if isinstance(sub, dict):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}{key}: expected a mapping, got {type(value).__name__}")
            label = f"{key} settings key" if key == "train" else "key"  # "unknown train settings key ..."
            for k in sorted(value):
                if k not in sub:
                    raise ConfigError(f"{where}unknown {label} '{key}.{k}' for task {task.name}"
                                      f"{_hint(k, sub, key + '.')}")
                if sub[k] is None and value[k] is not None and not isinstance(value[k], Mapping):
                    raise ConfigError(f"{where}{key}.{k}: expected a mapping, got {type(value[k]).__name__}")
    for key, value in (cfg.get("train") or {}).items():
        problem = _type_problem(TRAIN_TYPES[key], value)
        if problem:
            raise ConfigError(f"{where}train.{key}: expected {problem}, got {value!r}")
    data = cfg.get("data") or {}
    kind = data.get("dataset", task.datasets[0])
    if kind not in task.datasets:
        raise ConfigError(f"{where}data.dataset: unknown {kind!r} for task {task.name} ({', '.join(task.datasets)})")
