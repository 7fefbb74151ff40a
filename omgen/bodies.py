"""libcst reading of one body: its free names, local names and super() calls.

Shared by analysis (dependencies, errors) and emission (rewrites), so both
see the same nodes. Bodies are parsed, never executed. A body is read once
per compile however many variants use it; positions (a slower libcst
metadata pass) are computed only for bodies that have an error to report.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import textwrap
from typing import Iterable, Mapping

import libcst as cst
import libcst.metadata as meta

from . import limits
from .errors import Location, SpecErrors
from .model import Code

WRAPPER = "__omgen_body__"


@dataclasses.dataclass(frozen=True, eq=False)  # identity: one object per read body (cached)
class BodyNames:
    code: Code
    module: cst.Module  # `def __omgen_body__(<params>):` + the body
    free: tuple[cst.Name, ...]  # loads of names the body does not bind, in order of appearance
    locals: tuple[cst.Name, ...]  # names the body binds (first binding of each)
    super_calls: tuple[cst.Call, ...]
    returned: tuple[cst.BaseExpression, ...]  # the values of its return statements
    paths: Mapping[cst.CSTNode, tuple[cst.CSTNode, ...]]  # free name or super() call → its ancestors in the body

    def path_nodes(self, targets: Iterable[cst.CSTNode]) -> frozenset[cst.CSTNode]:
        """The targets and all their ancestors: what a rewrite of the targets has to visit."""
        return frozenset(node for target in targets for node in (*self.paths[target], target))

    @property
    def returns(self) -> bool:
        return bool(self.returned)

    @property
    def function(self) -> cst.FunctionDef:
        return self.module.body[0]  # type: ignore[return-value]

    def location(self, node: cst.CSTNode) -> Location:
        """Spec location of a node of this body."""
        start = _positions(self)[node].start
        return self.code.location_of(start.line - 1, start.column - 4)


def read_body(code: Code, params: tuple[str, ...] = ()) -> BodyNames:
    """Parse `code` as a function body; SpecErrors at the spec line on a syntax error."""
    return _read(code, params)


@functools.lru_cache(maxsize=8192)
def _read(code: Code, params: tuple[str, ...]) -> BodyNames:
    wrapped = f"def {WRAPPER}({', '.join(params)}):\n" + textwrap.indent(code.source, "    ", lambda line: True)
    too_deep = limits.check_python_nesting(wrapped)
    if too_deep:  # before libcst, whose parser and visitors recurse
        line, col, what = too_deep
        raise SpecErrors.single(code.location_of(max(line - 1, 1), max(col - 4, 0)), f"body too complex: {what}",
                                "split it into terms or functions")
    try:
        module = cst.parse_module(wrapped)
    except cst.ParserSyntaxError as exc:
        line = max(exc.raw_line - 1, 1)
        col = max(exc.raw_column - 4, 0) if exc.raw_line > 1 else 0
        message = exc.message.splitlines()[0] if exc.message else "invalid syntax"
        message = re.sub(r"^(parser error: )?error at \d+:\d+: ", "", message)
        raise SpecErrors.single(code.location_of(line, col), f"syntax error in body: {message}") from None
    function = module.body[0]
    visitor = NameVisitor()
    function.body.visit(visitor)  # type: ignore[union-attr]
    bound = set(params) | {n.value for n in visitor.stores}
    free = tuple(n for n in visitor.loads if n.value not in bound)
    paths = {node: visitor.paths[node] for node in (*free, *visitor.super_calls)}
    first_stores: dict[str, cst.Name] = {}
    for name in visitor.stores:
        first_stores.setdefault(name.value, name)
    return BodyNames(code, module, free, tuple(first_stores.values()), tuple(visitor.super_calls), tuple(visitor.returned), paths)


@functools.lru_cache(maxsize=256)
def _positions(body: BodyNames):
    return meta.MetadataWrapper(body.module, unsafe_skip_copy=True).resolve(meta.PositionProvider)


class NameVisitor(cst.CSTVisitor):
    """Python's function-scope rule: a name bound anywhere in the body is local everywhere in it."""

    def __init__(self) -> None:
        self.stack: list[cst.CSTNode] = []
        self.paths: dict[cst.CSTNode, tuple[cst.CSTNode, ...]] = {}
        self.loads: list[cst.Name] = []
        self.stores: list[cst.Name] = []
        self.super_calls: list[cst.Call] = []
        self.returned: list[cst.BaseExpression] = []

    def _bind(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.stores.append(target)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value)

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.stack.append(node)  # before visit_* runs: visit_Attribute/visit_Arg descend by hand
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        super().on_leave(original_node)

    def visit_Name(self, node: cst.Name) -> None:
        self.loads.append(node)
        self.paths[node] = tuple(self.stack[:-1])

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # `.attr` is not a name lookup
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # `keyword=` is not a name lookup
        return False

    def visit_Param(self, node: cst.Param) -> bool:
        self.stores.append(node.name)
        for part in (node.annotation, node.default):
            if part is not None:
                part.visit(self)
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stores.append(node.name)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)  # type: ignore[arg-type]

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "super":
            self.super_calls.append(node)
            self.paths[node] = tuple(self.stack[:-1])

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self.returned.append(node.value)
