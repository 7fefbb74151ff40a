"""libcst rewrites of a body into a method or function of the generated module.

Config names become `self.<name>`; `super()` becomes a call of the method
that holds the overridden definition. Nothing else in a body changes.
"""
from __future__ import annotations

import functools
import textwrap

import libcst as cst

from .bodies import BodyNames, read_body
from .literals import LINE, docstring
from .model import Code


class _BodyRewriter(cst.CSTTransformer):
    def __init__(self, names: BodyNames, config: frozenset[str], super_call: str | None):
        self.config_nodes = {use for use in names.free if use.value in config}
        self.super_nodes = set(names.super_calls)
        self.super_call = super_call
        self.visit_only = names.path_nodes([*self.config_nodes, *self.super_nodes])

    def on_visit(self, node: cst.CSTNode) -> bool:
        """Descend only towards the nodes to rewrite: the rest of the body is kept as it is."""
        return node in self.visit_only

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original in self.config_nodes:
            return cst.Attribute(value=cst.Name("self"), attr=cst.Name(original.value))
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if original in self.super_nodes and self.super_call is not None:
            return cst.parse_expression(self.super_call)
        return updated


@functools.lru_cache(maxsize=8192)
def render_def(code: Code, name: str, params: tuple[tuple[str, str], ...], returns: str, *, config: frozenset[str] = frozenset(),
               super_call: str | None = None, method: bool, docstring: str = "", indent: int = 0) -> str:
    """Source of `def name(params) -> returns:` with the body (rewritten when it reads config or super()).

    A body with nothing to rewrite is kept as written in the spec (format.py lays the module out after).
    """
    names = read_body(code)
    body = code.source
    if super_call or any(use.value in config for use in names.free):
        block = names.function.body.visit(_BodyRewriter(names, config, super_call))
        body = cst.Module(body=block.body).code  # type: ignore[union-attr]
    signature = ", ".join((["self"] if method else []) + [f"{p}: {t}" for p, t in params])
    header = f"def {name}({signature}) -> {returns}:\n"
    if docstring:
        header += f"    {_docstring_literal(docstring, indent)}\n"
    source = header + textwrap.indent(body, "    ", lambda line: bool(line.strip()))
    return textwrap.indent(source, " " * indent, lambda line: bool(line.strip()))


def _docstring_literal(text: str, indent: int) -> str:
    """One paragraph at the body's column (`indent` + 4), wrapped within the line."""
    return docstring(" ".join(text.split()), "    ", LINE - indent)
