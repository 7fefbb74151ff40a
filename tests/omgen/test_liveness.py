"""Entrypoints free each intermediate term after its last use (`del`), and never one that is read later or returned.

Checked on the AST of every generated module (the committed ones are what users run), independently of how
emit.py computes the last uses: a plain scan of each entrypoint body's statements.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p for p in (ROOT / "generated").rglob("*.py") if p.name != "__init__.py")


def _reads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _term_steps(function: ast.FunctionDef) -> list[tuple[int, str]]:
    """(statement index, local) of the `name = self.name(...)` steps of an entrypoint body."""
    steps = []
    for index, statement in enumerate(function.body):
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name) and isinstance(statement.value, ast.Call)
                and isinstance(statement.value.func, ast.Attribute)
                and statement.value.func.attr == statement.targets[0].id):
            steps.append((index, statement.targets[0].id))
    return steps


def _entrypoint_bodies():
    for module in MODULES:
        tree = ast.parse(module.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for function in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                steps = _term_steps(function)
                if len(steps) >= 2 and isinstance(function.body[-1], ast.Return):
                    yield pytest.param(function, steps, id=f"{module.relative_to(ROOT)}:{cls.name}.{function.name}")


BODIES = list(_entrypoint_bodies())


def test_the_generated_code_has_entrypoints_with_dels():
    assert len(BODIES) > 20
    assert any(isinstance(s, ast.Delete) for b in BODIES for s in b.values[0].body)


@pytest.mark.parametrize("function, steps", BODIES)
def test_each_term_is_freed_right_after_its_last_use_unless_returned(function, steps):
    body = function.body
    returned = _reads(body[-1])
    local_terms = {name for _, name in steps}
    last_step = steps[-1][0]
    deleted_at: dict[str, int] = {}
    for index, statement in enumerate(body):
        if isinstance(statement, ast.Delete):
            for target in statement.targets:
                assert isinstance(target, ast.Name) and target.id in local_terms, ast.unparse(statement)
                assert target.id not in deleted_at, f"{target.id} deleted twice"
                deleted_at[target.id] = index
    for name in local_terms:
        readers = [i for i, s in enumerate(body[:-1]) if not isinstance(s, ast.Delete) and name in _reads(s)]
        if name in returned:
            assert name not in deleted_at, f"{name} is returned but deleted"
        elif name in deleted_at:
            assert readers, f"{name} is deleted but never read"
            last_read = max(readers)
            assert last_read < deleted_at[name], f"{name} is read after its del"
            between = body[last_read + 1:deleted_at[name]]
            assert all(isinstance(s, ast.Delete) for s in between), f"{name} is freed late"
        else:
            assert readers and max(readers) == last_step, f"{name} is never freed"
    for statement in body:  # a del stays one short line (never wrapped by the formatter)
        if isinstance(statement, ast.Delete):
            assert len(ast.unparse(statement)) <= 60 and statement.lineno == statement.end_lineno
