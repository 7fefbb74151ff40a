"""Where a spec file is, as every message and generated header shows it."""
from __future__ import annotations

from pathlib import Path


def project_root(path: Path) -> Path:
    """The nearest folder above `path` holding pyproject.toml (else the current folder)."""
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def display_path(path: Path, root: Path) -> str:
    """Path as messages and headers show it: relative to the project, so output is the same on every machine."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
