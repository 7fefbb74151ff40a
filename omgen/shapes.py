"""Shape entries: an integer, a symbol (`N`, `H`), an int config name, or arithmetic of ints and int config names.

Parsed with Python's `ast` (an expression of a few tokens, never evaluated);
the emitted check reads config names as `self.<name>`.
"""
from __future__ import annotations

import ast
import keyword
import re

_ALLOWED_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
_NAME = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b")
_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ShapeSyntaxError(ValueError):
    pass


def parse_dim(text: str) -> str:
    """Normalised spelling of an arithmetic shape entry, or ShapeSyntaxError."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ShapeSyntaxError(f"'{text}' is not a size") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and not isinstance(node.op, _ALLOWED_OPS):
            raise ShapeSyntaxError(f"'{text}': only + - * // combine sizes")
        if not isinstance(node, (ast.BinOp, ast.Name, ast.Constant, ast.Load, *_ALLOWED_OPS)):
            raise ShapeSyntaxError(f"'{text}' is not a size (integers, int config names, + - * //)")
        if isinstance(node, ast.Name) and not _ASCII_NAME.fullmatch(node.id):
            raise ShapeSyntaxError(f"'{text}': {node.id!r} is not an ASCII name")
        if isinstance(node, ast.Constant) and (not isinstance(node.value, int) or isinstance(node.value, bool)):
            raise ShapeSyntaxError(f"'{text}': {node.value!r} is not an integer")
    return ast.unparse(tree)


def normalise_dim(value: object) -> str | int:
    """One shape entry as both frontends accept it: a non-negative int, a name, or arithmetic of them
    (normalised by parse_dim); anything else is a ShapeSyntaxError saying what a size is."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ShapeSyntaxError(f"'{value}' is not a size (sizes are non-negative)")
        return value
    if isinstance(value, str):
        return value if _ASCII_NAME.fullmatch(value) and not keyword.iskeyword(value) else parse_dim(value)
    raise ShapeSyntaxError(f"'{value}' is not a size (a non-negative integer, a name, or arithmetic such as "
                           "2 * num_classes)")


def is_expression(dim: str | int) -> bool:
    return isinstance(dim, str) and not dim.isidentifier()


def names_in(dim: str) -> list[str]:
    return _NAME.findall(dim)


def emitted_size(dim: str, config: set[str]) -> str:
    """The size as generated code computes it (config names read from self)."""
    return _NAME.sub(lambda m: f"self.{m[1]}" if m[1] in config else m[1], dim)
