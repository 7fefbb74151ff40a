"""Stage 3 of the Python frontend: ModulOM's "modes" made static.

A literal mode call (`self.semantic_pred('logits')`) is a term of its own,
named after its arguments; conditions on mode parameters are folded when
they are made of literals.
"""
from __future__ import annotations

import ast
import re
from typing import Any

import libcst as cst

from .read import REQUIRED, Method

UNKNOWN = object()  # what static_value returns for an expression that is not made of literals


def static_value(node: cst.BaseExpression) -> Any:
    """The value of an expression made of literals, comparisons, not/and/or; UNKNOWN otherwise."""
    if isinstance(node, cst.Name):
        return {"True": True, "False": False, "None": None}.get(node.value, UNKNOWN)
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float, cst.Tuple, cst.List,
                         cst.Set, cst.UnaryOperation)) and not (isinstance(node, cst.UnaryOperation)
                                                               and isinstance(node.operator, cst.Not)):
        try:
            return ast.literal_eval(cst.Module([]).code_for_node(node).strip())
        except (ValueError, SyntaxError, TypeError):
            return UNKNOWN
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        value = static_value(node.expression)
        return UNKNOWN if value is UNKNOWN else (not value)
    if isinstance(node, cst.BooleanOperation):
        left, right = static_value(node.left), static_value(node.right)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return (left and right) if isinstance(node.operator, cst.And) else (left or right)
    if isinstance(node, cst.Comparison):
        left = static_value(node.left)
        if left is UNKNOWN:
            return UNKNOWN
        ops = {cst.Equal: lambda a, b: a == b, cst.NotEqual: lambda a, b: a != b, cst.In: lambda a, b: a in b,
               cst.NotIn: lambda a, b: a not in b, cst.Is: lambda a, b: a is b, cst.IsNot: lambda a, b: a is not b,
               cst.LessThan: lambda a, b: a < b, cst.LessThanEqual: lambda a, b: a <= b,
               cst.GreaterThan: lambda a, b: a > b, cst.GreaterThanEqual: lambda a, b: a >= b}
        for target in node.comparisons:
            right = static_value(target.comparator)
            op = ops.get(type(target.operator))
            if right is UNKNOWN or op is None:
                return UNKNOWN
            try:
                if not op(left, right):
                    return False
            except TypeError:
                return UNKNOWN
            left = right
        return True
    return UNKNOWN


def typed(values: tuple) -> tuple:
    """Mode values compared with their types (1, 1.0 and True are three modes)."""
    return tuple((type(v).__name__, v) for v in values)


def is_mode_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def specialised_name(method: str, values: tuple, defaults: tuple) -> str:
    """`semantic_pred` for the defaults, else `semantic_pred__logits` (one `__part` per argument)."""
    if typed(values) == typed(defaults):
        return method
    parts = []
    for value in values:
        if isinstance(value, bool) or value is None:
            parts.append(str(value))
        elif isinstance(value, int):
            parts.append(str(value) if value >= 0 else f"m{-value}")
        elif isinstance(value, float):
            parts.append(repr(value).replace("-", "m").replace(".", "p").replace("+", ""))
        else:
            parts.append(re.sub(r"[^A-Za-z0-9_]", "_", value) or "empty")
    return method + "__" + "__".join(parts)


# ----------------------------------------------------------------------------- body rewriting


def literal_args(call: cst.Call, method: Method) -> tuple | None:
    """The full argument tuple (defaults filled in) of a call with only literal positional arguments."""
    values = []
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            return None
        value = static_value(arg.value)
        if value is UNKNOWN or not is_mode_value(value):
            return None
        values.append(value)
    params = method.params
    if len(values) > len(params):
        return None
    for param in params[len(values):]:
        if param.default is REQUIRED:
            return None
        values.append(param.default)
    return tuple(values)
