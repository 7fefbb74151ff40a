"""Type strings of terms, inputs and config: the TorchScript-compatible subset."""
from __future__ import annotations

import re

SCALARS = ("Tensor", "float", "int", "bool", "str", "torch.device", "torch.dtype")
GENERICS = {"List": 1, "Optional": 1, "Tuple": -1, "Dict": 2}
_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)?|\[|\]|,)")


class TypeSyntaxError(ValueError):
    pass


def normalise_type(text: str) -> str:
    """Canonical spelling of a type string, or TypeSyntaxError saying what is allowed."""
    tokens = _tokenise(str(text))
    result, rest = _parse(tokens)
    if rest:
        raise TypeSyntaxError(f"unexpected '{rest[0]}' in type '{text}'")
    return result


def _tokenise(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise TypeSyntaxError(f"cannot read type '{text}'")
        tokens.append(match.group(1))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _parse(tokens: list[str]) -> tuple[str, list[str]]:
    if not tokens:
        raise TypeSyntaxError("empty type")
    head, rest = tokens[0], tokens[1:]
    if head in SCALARS:
        return head, rest
    if head not in GENERICS:
        allowed = ", ".join(SCALARS + tuple(f"{g}[...]" for g in GENERICS))
        raise TypeSyntaxError(f"unknown type '{head}' (expected one of {allowed})")
    if not rest or rest[0] != "[":
        raise TypeSyntaxError(f"'{head}' needs parameters, e.g. {head}[Tensor]")
    rest = rest[1:]
    params = []
    while True:
        param, rest = _parse(rest)
        params.append(param)
        if not rest:
            raise TypeSyntaxError(f"missing ']' in {head}[...]")
        if rest[0] == "]":
            rest = rest[1:]
            break
        if rest[0] != ",":
            raise TypeSyntaxError(f"expected ',' or ']' in {head}[...], got '{rest[0]}'")
        rest = rest[1:]
    arity = GENERICS[head]
    if arity > 0 and len(params) != arity:
        raise TypeSyntaxError(f"{head} takes {arity} parameter(s), got {len(params)}")
    if head == "Dict" and params[0] not in ("str", "int"):
        raise TypeSyntaxError("Dict keys must be str or int")
    return f"{head}[{', '.join(params)}]", rest


def tuple_items(type_name: str | None) -> list[str] | None:
    """The element types of a normalised ``Tuple[...]`` type, or None for any other type."""
    if not type_name or not type_name.startswith("Tuple["):
        return None
    tokens = _tokenise(type_name)[2:]
    items = []
    while tokens and tokens[0] != "]":
        item, tokens = _parse(tokens)
        items.append(item)
        if tokens and tokens[0] == ",":
            tokens = tokens[1:]
    return items


CONFIG_TYPES = ("float", "int", "bool", "str", "List[int]", "List[float]", "List[str]", "List[bool]")


def python_value_matches(type_name: str, value: object) -> bool:
    """Whether a YAML/CLI value fits a config type (ints are accepted for floats)."""
    scalar = {
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
    }
    if type_name in scalar:
        return scalar[type_name](value)
    if type_name.startswith("List["):
        inner = type_name[5:-1]
        return isinstance(value, (list, tuple)) and all(scalar[inner](v) for v in value)
    return False


def coerce_config_value(type_name: str, value: object) -> object:
    """Value in the canonical Python type (floats as float)."""
    if type_name == "float":
        return float(value)  # type: ignore[arg-type]
    if type_name == "List[float]":
        return [float(v) for v in value]  # type: ignore[union-attr]
    if type_name.startswith("List["):
        return list(value)  # type: ignore[arg-type]
    return value
