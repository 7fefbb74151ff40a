"""Helpers of the attack suite: a small valid spec to vary, and a judge of what `omgen compile` did with it."""
from __future__ import annotations

import contextlib
import copy
import io
import re
from pathlib import Path

import pytest
import yaml

from omgen.cli import main

from .sandbox import sandbox_import

BASE_SPEC = {
    "om": "toy",
    "doc": "A toy OM.",
    "config": {"threshold": {"type": "float", "default": 0.5, "doc": "Minimum score."},
               "label": {"type": "str", "default": "peaks", "doc": "A string."}},
    "inputs": {"heat_logits": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "prediction", "doc": "Logits."},
               "points": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "truth"}},
    "functions": {"twice": {"doc": "Twice x.", "args": {"x": "Tensor"}, "returns": "Tensor", "body": "return 2 * x\n"}},
    "blocks": {"Prediction": {"doc": "Decoding.", "terms": {
        "heat_pred": {"math": r"\Gamma := \sigma(\tilde\Gamma)", "doc": "Heat.", "expr": "torch.sigmoid(heat_logits)"},
        "peaks": {"expr": "twice(heat_pred) > threshold"}}},
        "Losses": {"bases": ["Prediction"], "terms": {"loss": {"expr": "F.mse_loss(heat_pred, points)"}}}},
    "compose": ["Losses"],
    "mixins": {"oracle-heat": {"doc": "Truth for heat.", "terms": {"heat_pred": {"expr": "points"}}}},
    "variants": {"base": [], "oracle": {"mixins": ["oracle-heat"], "doc": "Oracle."}},
    "entrypoints": {"train": {"outputs": ["loss"], "doc": "Loss."}, "infer": ["peaks"]},
}

DIAGNOSTIC = re.compile(r"(.+: (error|warning): .+|\d+ errors|\d+ stale file\(s\).*)")


def base_spec() -> dict:
    return copy.deepcopy(BASE_SPEC)


def run_omgen(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def write_yaml(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def judge(status: int, err: str, out_dir: Path) -> dict[str, dict]:
    """Either a clean refusal (exit 1 or 2, every stderr line a diagnostic) or files that import inertly.

    Returns the sandboxed namespaces of the generated variant modules (empty on refusal).
    """
    assert "Traceback" not in err, err
    if status != 0:
        assert status in (1, 2), (status, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines, "a refusal must say why"
        for line in lines:
            assert DIAGNOSTIC.fullmatch(line), f"not a one-line diagnostic: {line!r}"
        return {}
    namespaces = {}
    for path in sorted(out_dir.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        namespace = sandbox_import(source, str(path))  # raises Escaped if import runs anything
        if "ENTRYPOINTS" in namespace:
            namespaces[path.stem] = namespace
    assert not list(out_dir.rglob("*.tmp")) and not list(out_dir.rglob(".*stage-*")), "leftovers"
    return namespaces


@pytest.fixture
def compile_yaml(tmp_path):
    """Compile a spec dict (written as YAML) into a fresh folder; (status, stderr, namespaces)."""
    counter = iter(range(10**6))

    def run(spec: dict, *extra: str) -> tuple[int, str, dict]:
        case = tmp_path / f"case{next(counter)}"
        case.mkdir()
        path = write_yaml(case / "spec.yaml", spec)
        status, _, err = run_omgen("compile", str(path), "-o", str(case / "out"), "-q", *extra)
        return status, err, judge(status, err, case / "out")
    return run
