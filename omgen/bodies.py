"""libcst reading of one body: its free names, local names and super() calls.

Shared by analysis (dependencies, errors) and emission (rewrites), so both
see the same nodes. Bodies are parsed, never executed.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import textwrap

import libcst as cst
import libcst.metadata as meta

from .errors import Location, SpecErrors
from .model import Code

WRAPPER = "__omgen_body__"


@dataclasses.dataclass(frozen=True)
class NameUse:
    name: str
    line: int  # in the body source, 1-based
    col: int  # 0-based
    node: cst.Name


@dataclasses.dataclass(frozen=True)
class BodyNames:
    module: cst.Module  # `def __omgen_body__(<params>):` + the body
    free: tuple[NameUse, ...]  # names not bound in the body, in order of appearance
    locals: tuple[NameUse, ...]  # names the body assigns
    super_calls: tuple[tuple[cst.Call, int, int], ...]  # (node, line, col)
    returns: bool

    @property
    def function(self) -> cst.FunctionDef:
        return self.module.body[0]  # type: ignore[return-value]


def read_body(code: Code, params: tuple[str, ...] = ()) -> BodyNames:
    """Parse `code` as a function body; SpecErrors at the spec line on a syntax error."""
    return _read(code.source, params, code)


@functools.lru_cache(maxsize=4096)
def _read(source: str, params: tuple[str, ...], code: Code) -> BodyNames:
    wrapped = f"def {WRAPPER}({', '.join(params)}):\n" + textwrap.indent(source, "    ", lambda line: True)
    try:
        module = cst.parse_module(wrapped)
    except cst.ParserSyntaxError as exc:
        line = max(exc.raw_line - 1, 1)
        col = max(exc.raw_column - 4, 0) if exc.raw_line > 1 else 0
        message = exc.message.splitlines()[0] if exc.message else "invalid syntax"
        message = re.sub(r"^(parser error: )?error at \d+:\d+: ", "", message)
        raise SpecErrors.single(code.location_of(line, col), f"syntax error in body: {message}") from None
    wrapper = meta.MetadataWrapper(module, unsafe_skip_copy=True)
    scopes = wrapper.resolve(meta.ScopeProvider)
    positions = wrapper.resolve(meta.PositionProvider)
    free: dict[int, NameUse] = {}
    local: dict[int, NameUse] = {}
    seen_scopes = {scope for scope in scopes.values() if scope is not None}
    for scope in seen_scopes:
        if isinstance(scope, meta.GlobalScope):
            continue
        for access in scope.accesses:
            node = access.node
            if not isinstance(node, cst.Name):
                continue
            referents = access.referents
            if referents and not all(isinstance(r, meta.BuiltinAssignment) for r in referents):
                continue
            pos = positions[node].start
            free[id(node)] = NameUse(node.value, pos.line - 1, pos.column - 4, node)
        for assignment in scope.assignments:
            if isinstance(assignment, meta.Assignment) and isinstance(assignment.node, (cst.Name,)):
                pos = positions[assignment.node].start
                if assignment.name in params:
                    continue
                local[id(assignment.node)] = NameUse(assignment.name, pos.line - 1, pos.column - 4, assignment.node)
            elif isinstance(assignment, meta.Assignment) and assignment.name != WRAPPER:
                node = assignment.node
                pos = positions[node].start if node in positions else None
                if pos is not None and assignment.name not in params:
                    local[id(node)] = NameUse(assignment.name, pos.line - 1, pos.column - 4, node)  # type: ignore[arg-type]
    finder = _SuperFinder()
    module.visit(finder)
    super_calls = tuple((call, positions[call].start.line - 1, positions[call].start.column - 4) for call in finder.calls)
    order = lambda use: (use.line, use.col)  # noqa: E731
    return BodyNames(module, tuple(sorted(free.values(), key=order)), tuple(sorted(local.values(), key=order)),
                     super_calls, finder.returns)


class _SuperFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.calls: list[cst.Call] = []
        self.returns = False
        self.depth = 0

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "super":
            self.calls.append(node)

    def visit_Return(self, node: cst.Return) -> None:
        self.returns = True


def body_location(code: Code, use_line: int, use_col: int) -> Location:
    return code.location_of(use_line, use_col)
