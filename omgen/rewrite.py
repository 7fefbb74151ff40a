"""libcst rewrites of a body into a method or function of the generated module.

Config names become `self.<name>`; `super()` becomes a call of the method
that holds the overridden definition. Nothing else in a body changes.
"""
from __future__ import annotations

import functools
import textwrap

import libcst as cst

from .bodies import BodyNames, read_body
from .model import Code


class _BodyRewriter(cst.CSTTransformer):
    def __init__(self, names: BodyNames, config: frozenset[str], super_call: str | None):
        self.config_nodes = {use for use in names.free if use.value in config}
        self.super_nodes = set(names.super_calls)
        self.super_call = super_call

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original in self.config_nodes:
            return cst.Attribute(value=cst.Name("self"), attr=cst.Name(original.value))
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if original in self.super_nodes and self.super_call is not None:
            return cst.parse_expression(self.super_call)
        return updated


@functools.lru_cache(maxsize=4096)
def render_def(code: Code, name: str, params: tuple[tuple[str, str], ...], returns: str, *, config: frozenset[str] = frozenset(),
               super_call: str | None = None, method: bool, docstring: str = "", indent: int = 0) -> str:
    """Source of `def name(params) -> returns:` with the rewritten body, indented by `indent` spaces."""
    names = read_body(code)
    function = names.function
    if super_call or any(use.value in config for use in names.free):
        function = function.visit(_BodyRewriter(names, config, super_call))
    assert isinstance(function, cst.FunctionDef)
    param_nodes = ([cst.Param(cst.Name("self"))] if method else []) + [
        cst.Param(cst.Name(p), annotation=cst.Annotation(cst.parse_expression(t))) for p, t in params]
    body = function.body
    if docstring:
        doc = cst.SimpleStatementLine([cst.Expr(cst.SimpleString(_docstring_literal(docstring)))])
        body = body.with_changes(body=(doc, *body.body))
    function = function.with_changes(
        name=cst.Name(name), params=cst.Parameters(params=param_nodes),
        returns=cst.Annotation(cst.parse_expression(returns)), body=body)
    source = cst.Module(body=[function]).code
    return textwrap.indent(source, " " * indent, lambda line: bool(line.strip()))


def _docstring_literal(text: str) -> str:
    text = " ".join(text.split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{text}"""'
