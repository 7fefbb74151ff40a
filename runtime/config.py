"""YAML run configs with ``--set a.b=value`` overrides (values read as YAML scalars).

A config may name ``base: other.yaml`` (relative to itself): the base is
loaded first and this file's keys are merged over it, recursively.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping

import yaml


class ConfigError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, with YAML 1.2's floats: `1e30` and `1e-3` are numbers, not strings (YAML 1.1,
    PyYAML's default, wants a dot: `lr: 1e-3` read as the string '1e-3' failed deep in the optimiser)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


MAX_CONFIG_BYTES = 1 << 20
MAX_BASE_DEPTH = 16


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path, overrides: Iterable[str] = (), _chain: tuple = ()) -> Dict[str, Any]:
    path = Path(path)
    if path.resolve() in _chain:
        raise ConfigError(f"{path}: 'base' comes back to a config that named it (a cycle)")
    if len(_chain) >= MAX_BASE_DEPTH:
        raise ConfigError(f"{path}: more than {MAX_BASE_DEPTH} configs deep through 'base'")
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    if not path.is_file():
        raise ConfigError(f"{path}: not a regular file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES}")
    try:
        data = read_yaml(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); a config is a YAML file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base: expected a file name, got {type(base).__name__}")
        data = merge(load_config(path.parent / base, (), (*_chain, path.resolve())), data)
    return apply_overrides(data, overrides)


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    out = copy.deepcopy(dict(config))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item}: expected key=value")
        try:
            value = read_yaml(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: cannot read the value") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item}: {part} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def get(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
