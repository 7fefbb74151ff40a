"""Stage 1 of the Python frontend: the spec file as Python's ast sees it, with positions; nothing runs.

Module-level literals become the raw tree of omgen.sections, so that the
rules of inputs, variants, entrypoints and the rest are the YAML frontend's.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from ..errors import ErrorCollector, Location
from ..sections import EXPR, LIST, MAP, NAME, NOT_A_LITERAL, SCALAR, Raw, Sections

MARKER_BASE = "OutputMath"
#: Characters Python's tokenizer reads inside one line where str.splitlines (and libcst positions) see two.
LINE_BREAKS_PYTHON_DOES_NOT_SEE = {"\x0b": "vertical tab (U+000B)", "\x0c": "form feed (U+000C)",
                                   "\x1c": "file separator (U+001C)", "\x1d": "group separator (U+001D)",
                                   "\x1e": "record separator (U+001E)", "\x85": "next line (U+0085)",
                                   "\u2028": "line separator (U+2028)", "\u2029": "paragraph separator (U+2029)"}


class SourceFile:
    """One spec file, parsed with Python's ast (structure and positions; nothing runs); collects errors.

    Method bodies are read again, one by one, with libcst (rewriting keeps their formatting).
    """

    def __init__(self, path: Path, display: str, text: str, errors: ErrorCollector, root: Path):
        self.path, self.display, self.text, self.errors, self.root = path, display, text, errors, root
        self.lines = text.splitlines()
        self.tree = ast.parse(text, filename=display)
        self.sections = Sections(errors, display)

    def column(self, line: int, byte_offset: int) -> int:
        """0-based character column of an ast (UTF-8 byte) offset."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))

    def loc(self, node: ast.AST) -> Location:
        return Location(self.display, node.lineno, self.column(node.lineno, node.col_offset) + 1)  # type: ignore

    def name_loc(self, node: ast.FunctionDef | ast.ClassDef) -> Location:
        """Where the name of a def or class is (ast positions point at the keyword)."""
        line = self.lines[node.lineno - 1]
        col = self.column(node.lineno, node.col_offset)
        found = re.compile(rf"\b{re.escape(node.name)}\b").search(line, col)
        return Location(self.display, node.lineno, (found.start() if found else col) + 1)

    def decorator_loc(self, node: ast.AST) -> Location:
        """Where the '@' of a decorator is."""
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        col = self.column(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        at = line.rfind("@", 0, col + 1)
        return Location(self.display, node.lineno, (at if at >= 0 else col) + 1)  # type: ignore[attr-defined]

    def code(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def raw(self, node: ast.AST) -> Raw:
        """The raw tree of an expression: dicts, lists and tuples, constants; names and other code by their text.

        Nesting is bounded (limits.check_python_nesting) before ast parses the file.
        """
        location = self.loc(node)
        if isinstance(node, ast.Dict):
            pairs = tuple((self.raw(key) if key is not None else Raw(EXPR, "**" + self.code(value), location),
                           self.raw(value)) for key, value in zip(node.keys, node.values))
            return Raw(MAP, pairs, location)
        if isinstance(node, (ast.List, ast.Tuple)):
            return Raw(LIST, tuple(self.raw(item) for item in node.elts), location)
        if isinstance(node, ast.Name):
            return Raw(NAME, node.id, location)
        if isinstance(node, (ast.Constant, ast.UnaryOp, ast.BinOp)):
            try:
                value = ast.literal_eval(node)  # constants, -1, 1e-3, complex numbers aside
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return Raw(EXPR, self.code(node), location)
            if value is None or isinstance(value, (str, int, float, bool)):
                return Raw(SCALAR, value, location)
        return Raw(EXPR, self.code(node), location)

    def literal(self, node: ast.AST, what: str) -> Any:
        """The value of a literal expression, or NOT_A_LITERAL (reported)."""
        return self.sections.literal(self.raw(node), what)

    def string(self, node: ast.AST, what: str) -> str | None:
        raw = self.raw(node)
        if raw.kind == SCALAR and isinstance(raw.value, str):
            return raw.value
        self.sections.string(raw, what, strict=True)  # reports it
        return None

    def type_of(self, annotation: ast.AST | None, what: str) -> str | None:
        """An annotation as a type: a string annotation by its text, any other by its source."""
        if annotation is None:
            return None
        return self.sections.type_string(self.annotation(annotation), what)

    def annotation(self, node: ast.AST) -> Raw:
        """A type annotation as the raw text of a type (a string annotation by its value)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return Raw(SCALAR, node.value, self.loc(node))
        return Raw(EXPR, ast.unparse(node), self.loc(node))


def docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef) -> tuple[str, list[ast.stmt]]:
    """The cleaned docstring of a module, class or def, and the statements after it."""
    doc = ast.get_docstring(node, clean=True)
    return (doc, list(node.body[1:])) if doc is not None else ("", list(node.body))


def decorator_name(decorator: ast.AST) -> tuple[str, ast.Call | None]:
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    if isinstance(target, ast.Name):
        return target.id, call
    if isinstance(target, ast.Attribute):
        return target.attr, call
    return "", call


def nested_classes(tree: ast.Module) -> list[tuple[ast.ClassDef, str]]:
    """Classes anywhere but at module level (inside a function, a class or a statement)."""
    found = []

    def walk(node: ast.AST, inside: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                if inside:
                    found.append((child, inside))
                walk(child, "class")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(child, "function")
            elif isinstance(child, ast.stmt) and inside is None:
                walk(child, "statement")
            else:
                walk(child, inside)

    walk(tree, None)
    return found


__all__ = ["NOT_A_LITERAL", "MARKER_BASE", "SourceFile", "decorator_name", "docstring", "nested_classes"]
