"""Golden files: small specs compiled to the exact code reviewed in tests/omgen/golden/.

On an intended change of the emitted code, regenerate with
`OMGEN_UPDATE_GOLDEN=1 python -m pytest tests/omgen/test_golden.py` and review the diff.
"""
import difflib
import os
import shutil
from pathlib import Path

import pytest

from omgen import compile_spec

GOLDEN = Path(__file__).parent / "golden"
SPECS = sorted(GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_code_matches_golden(spec, tmp_path):
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    shutil.copy(spec, project / "specs" / spec.name)
    result = compile_spec(project / "specs" / spec.name)
    for generated in result.files:
        if generated.path.name == "__init__.py":
            continue
        expected_path = GOLDEN / spec.stem / generated.path.name
        if os.environ.get("OMGEN_UPDATE_GOLDEN"):
            expected_path.parent.mkdir(exist_ok=True)
            expected_path.write_text(generated.source)
        expected = expected_path.read_text() if expected_path.exists() else ""
        if expected != generated.source:
            diff = "".join(difflib.unified_diff(expected.splitlines(True), generated.source.splitlines(True),
                                                str(expected_path), "compiled"))
            pytest.fail(f"generated code differs from {expected_path}; if intended, run "
                        f"OMGEN_UPDATE_GOLDEN=1 python -m pytest tests/omgen/test_golden.py\n{diff}")


def test_golden_code_runs_as_the_math_says():
    import importlib.util

    import torch

    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    modules = {}
    for variant in ("base", "deep", "oracle"):
        spec = importlib.util.spec_from_file_location(f"golden_{variant}", GOLDEN / "chains" / f"{variant}.py")
        modules[variant] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[variant])
    s = x[:, 0] + 0.5 * x[:, 1]
    assert torch.equal(modules["base"].Score()(x)["score"], s + 0.25)
    assert torch.equal(modules["deep"].Score()(x)["score"], -(2.0 * (s + 0.25)))
    assert torch.equal(modules["oracle"].Score()(y)["score"], y[:, 0] + 0.5 * y[:, 1])
    scripted = torch.jit.script(modules["deep"].Loss(weights=[0.0, 1.0], bias=0.0))
    assert torch.allclose(scripted(x, y)["error"], (-2.0 * x[:, 1] - y[:, 1]).abs().mean())
