"""The last emit step: a generated module laid out within LINE columns by ruff's formatter.

Why a formatter and not the emitter: the bodies are the spec author's code, and only a formatter re-wraps
code without changing it. Why ruff's: ~30 ms a module where black takes ~3 s (the suite and `--check`
format every variant). The version is pinned (the layout is part of `generated/`, which `--check` compares
byte for byte) and ruff runs `--isolated`, so no configuration file of a checkout changes the layout.
That the layout keeps the meaning (:func:`same_meaning`: the same AST, docstring indentation aside) is
checked by the tests on every shipped, golden and random spec rather than at each compile, where it
would double the time of a compile (3 s of panoptic.yaml's 10 variants are AST walks).
Comments and docstrings, which a formatter leaves alone, are wrapped by the emitter (literals.py, emit.py).
"""
from __future__ import annotations

import ast
import os
import subprocess

LINE = 100
RUFF_VERSION = "0.17.5"
TIMEOUT_S = 60


class FormatError(RuntimeError):
    """The formatter is missing, of another version, or failed on a generated module."""


def format_module(source: str, display: str) -> str:
    """`source` laid out by ruff within LINE columns (`display` names the module in errors)."""
    return _run_ruff(["format", "--isolated", "--no-cache", f"--line-length={LINE}", "--quiet", "-"], source,
                     display)


def _ruff_binary() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        raise FormatError(f"the ruff formatter is not installed: pip install ruff=={RUFF_VERSION}") from None
    return os.fsdecode(find_ruff_bin())


def _run_ruff(arguments: list[str], source: str, display: str) -> str:
    binary = _ruff_binary()
    _check_version(binary)
    try:
        done = subprocess.run([binary, *arguments], input=source, capture_output=True, text=True,
                              encoding="utf-8", timeout=TIMEOUT_S, check=False)
    except (OSError, UnicodeError, subprocess.TimeoutExpired) as exc:
        raise FormatError(f"{display}: ruff format did not run: {exc}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise FormatError(f"{display}: ruff format failed: {reason}")
    return done.stdout


_checked: dict[str, str] = {}


def _check_version(binary: str) -> None:
    if binary not in _checked:
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=TIMEOUT_S,
                                 check=False).stdout.split()
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FormatError(f"ruff did not run: {exc}") from None
        _checked[binary] = out[-1] if out else "unknown"
    if _checked[binary] != RUFF_VERSION:
        raise FormatError(f"generated code is laid out by ruff {RUFF_VERSION}, found {_checked[binary]}: "
                          f"pip install ruff=={RUFF_VERSION}")


def same_meaning(before: str, after: str) -> bool:
    """`after` parses to the AST of `before`, docstrings compared the way a formatter may re-indent them."""
    return _shape(before) == _shape(after)


def _shape(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                first.value.value = "\n".join(line.strip() for line in first.value.value.strip().splitlines())
    return ast.dump(tree)
