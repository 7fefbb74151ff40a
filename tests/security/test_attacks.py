"""Every escape idiom of attacks.py, as the body of a term, is refused by `omgen compile` with one line at the
body's line; nothing is written."""
from __future__ import annotations

import pytest

from .attacks import ATTACKS
from .conftest import base_spec


def test_the_list_holds_at_least_thirty_idioms():
    assert len(ATTACKS) >= 30


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_attack_is_refused_at_compile_time(name, compile_yaml, tmp_path):
    spec = base_spec()
    spec["blocks"]["Prediction"]["terms"]["evil"] = {"type": "Tensor", "body": ATTACKS[name] + "\n"}
    spec["entrypoints"]["infer"] = ["peaks", "evil"]
    status, err, namespaces = compile_yaml(spec)
    assert status == 1, f"{name} compiled"
    assert not namespaces
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(": error: " in line and "'evil'" in line for line in lines), lines
    assert not list(tmp_path.rglob("*.py")), "a refused spec wrote files"


def test_the_same_term_without_the_attack_compiles(compile_yaml):
    """The harness is not what refuses: the body `return x` compiles."""
    spec = base_spec()
    spec["blocks"]["Prediction"]["terms"]["evil"] = {"type": "Tensor", "body": "return heat_pred * 2\n"}
    spec["entrypoints"]["infer"] = ["peaks", "evil"]
    status, err, namespaces = compile_yaml(spec)
    assert status == 0, err
    assert namespaces
