"""The last gate before a generated file is written: it parses, and importing it runs nothing of the spec's.

Escaping (literals.py) and name grammars keep spec text out of code; this
check proves the result with CPython's own parser, whatever the escaping
missed. Importing a module runs its top level, class bodies, decorators,
default values and annotations: each must be one of the template's own
forms (imports of torch/math/typing, literal constants, defs and classes
whose bodies hold only defs, docstrings and annotations of known types).
Function bodies may hold anything the spec says: they run only when called.
"""
from __future__ import annotations

import ast

from .names import IMPORTS

_IMPORTS = frozenset(IMPORTS)  # (module, name bound): exactly the template's import block (omgen/names.py)
_TYPE_NAMES = frozenset({"Tensor", "List", "Dict", "Tuple", "Optional", "int", "float", "bool", "str", "None"})
_TYPE_ATTRIBUTES = frozenset({"torch.device", "torch.dtype", "torch.Tensor"})
_CLASS_BASES = frozenset({"Terms", "torch.nn.Module"})
_DECORATORS = frozenset({"torch.jit.export"})


class NotInert(Exception):
    """A generated module that would not parse, or would run something at import."""


def check_module(source: str, filename: str) -> None:
    """Raise NotInert naming the line when `source` does not parse or its import would run more than definitions."""
    try:
        tree = ast.parse(source, filename)
        compile(tree, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise NotInert(f"{filename}:{getattr(exc, 'lineno', 0) or 0}: does not parse ({exc})") from None
    except (RecursionError, MemoryError):
        raise NotInert(f"{filename}: too deeply nested to compile") from None
    for statement in tree.body:
        _module_statement(statement, filename)


def _fail(node: ast.AST, filename: str, what: str) -> NotInert:
    return NotInert(f"{filename}:{getattr(node, 'lineno', 0)}: {what} would run at import")


def _module_statement(node: ast.stmt, filename: str) -> None:
    if isinstance(node, ast.Expr) and _is_string(node.value):
        return
    if isinstance(node, ast.Import):
        if all((alias.name, alias.asname or alias.name) in _IMPORTS for alias in node.names):
            return
    elif isinstance(node, ast.ImportFrom):
        if node.level == 0 and all((node.module, alias.asname or alias.name) in _IMPORTS and alias.asname is None
                                   for alias in node.names):
            return
    elif isinstance(node, ast.Assign):
        if all(isinstance(t, ast.Name) for t in node.targets) and _is_literal(node.value, names_ok=True):
            return
    elif isinstance(node, ast.FunctionDef):
        _function(node, filename, decorators=frozenset())
        return
    elif isinstance(node, ast.ClassDef):
        _class(node, filename)
        return
    raise _fail(node, filename, f"a module-level {type(node).__name__}")


def _class(node: ast.ClassDef, filename: str) -> None:
    if node.decorator_list or node.keywords or not all(_dotted(b) in _CLASS_BASES for b in node.bases):
        raise _fail(node, filename, f"the class header of {node.name}")
    for item in node.body:
        if isinstance(item, ast.Expr) and _is_string(item.value):
            continue
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is None \
                and _is_type(item.annotation):
            continue
        if isinstance(item, ast.FunctionDef):
            _function(item, filename, decorators=_DECORATORS)
            continue
        raise _fail(item, filename, f"a {type(item).__name__} in the body of class {node.name}")


def _function(node: ast.FunctionDef, filename: str, decorators: frozenset[str]) -> None:
    """What `def` evaluates when it runs: decorators, defaults, annotations (not the body)."""
    if not all(_dotted(d) in decorators for d in node.decorator_list):
        raise _fail(node, filename, f"a decorator of {node.name}")
    args = node.args
    for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
        if not _is_literal(default, names_ok=False):
            raise _fail(default, filename, f"a default value of {node.name}")
    annotations = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                   if a is not None and a.annotation is not None]
    for annotation in [*annotations, *([node.returns] if node.returns else [])]:
        if not _is_type(annotation):
            raise _fail(annotation, filename, f"an annotation of {node.name}")


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = _dotted(node.value)
        return f"{prefix}.{node.attr}" if prefix else ""
    return ""


def _is_type(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Name):
        return node.id in _TYPE_NAMES
    if isinstance(node, ast.Attribute):
        return _dotted(node) in _TYPE_ATTRIBUTES
    if isinstance(node, ast.Subscript):
        return _is_type(node.value) and _is_type(node.slice)
    if isinstance(node, ast.Tuple):
        return all(_is_type(e) for e in node.elts)
    return False


def _is_literal(node: ast.AST, names_ok: bool) -> bool:
    """Constants and containers of them; `float("inf")`-style calls; names (class references) where allowed."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return names_ok
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _is_literal(node.operand, names_ok=False)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_is_literal(e, names_ok) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k, False) for k in node.keys) and \
            all(_is_literal(v, names_ok) for v in node.values)
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id == "float" and not node.keywords
                and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in ("inf", "nan"))
    return False
