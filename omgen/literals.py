"""Spec text as Python source: the only way text from a spec enters generated code.

Every string is written as a literal built here (each character that is not
printable escaped, so no newline, NUL, CR, U+2028, bidi control or lone
surrogate reaches the file raw), every comment through `comment_text`.
Names never pass here: they are checked against a full-match grammar.
"""
from __future__ import annotations

import math
import textwrap

LINE = 100  # the column a generated module stays within (format.py lays out the code)


def pyrepr(value: object) -> str:
    """A Python literal of `value`, with stable spelling, for the types a header or a default holds."""
    if isinstance(value, tuple):
        return "(" + ", ".join(pyrepr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(pyrepr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pyrepr(k)}: {pyrepr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return py_string(value)
    if isinstance(value, float) and not math.isfinite(value):
        return 'float("nan")' if math.isnan(value) else ('float("inf")' if value > 0 else '-float("inf")')
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__}")  # the loaders admit no other type


def _escape_char(char: str) -> str:
    return repr(char)[1:-1] if char not in "\\\"" else "\\" + char


def py_string(text: str) -> str:
    """A double-quoted Python string literal of `text`: every character that is not printable (line breaks,
    NUL, U+2028, bidi controls, lone surrogates) and every quote and backslash written as an escape."""
    return '"' + "".join(c if c.isprintable() and c not in "\\\"" else _escape_char(c) for c in text) + '"'


def comment_text(text: str) -> str:
    """`text` made safe inside a `#` comment: nothing in it can end the comment line or hide what follows."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def comment_lines(text: str, prefix: str, width: int = LINE) -> list[str]:
    """`text` as `prefix`-led comment lines of at most `width` columns (continuations indented two more; a
    word longer than a line stays whole)."""
    safe = comment_text(text)
    pieces = textwrap.wrap(safe, max(width - len(prefix), 20), subsequent_indent="  ", break_long_words=False,
                           break_on_hyphens=False) if safe.strip() else [""]
    return [(prefix + piece).rstrip() for piece in pieces]


def docstring(text: str, indent: str = "", width: int = LINE) -> str:
    """A docstring literal of `text`: triple-quoted (backslashes doubled) when it is printable text, else escaped
    pieces implicitly concatenated. Lines longer than `width` (counted from the column of `indent`) are wrapped
    at spaces."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    joined = "\n".join(lines)
    if not (all(line.isprintable() for line in lines) and '"""' not in joined and not joined.endswith('"')):
        return _concatenated(joined, indent, width)
    lines = [line.replace("\\", "\\\\") for line in lines]
    joined = "\n".join(lines)
    room = width - len(indent)
    if len(lines) > 1 or len(joined) > room - 6:  # one line holds both quotes; the first of several, one
        wrapped = [piece for line in lines for piece in _wrap(line, room - 3)]
        lines = wrapped if len(wrapped) > 1 else _wrap(lines[0], room - 6)
    closing = "\n" + indent + '"""' if len(lines) > 1 else '"""'  # PEP 257: a multi-line docstring closes alone
    return '"""' + ("\n" + indent).join(lines).replace("\n" + indent + "\n", "\n\n") + closing


def _concatenated(text: str, indent: str, width: int) -> str:
    """Text a triple-quoted literal cannot hold (control characters, \"\"\"): escaped pieces of at most `width`
    columns, implicitly concatenated inside parentheses, which is still one string constant (the docstring)."""
    room = max(width - len(indent) - 6, 20)  # the pieces' indent (4) and their quotes (2)
    pieces, current = [], ""
    for char in text:
        escaped = char if char.isprintable() and char not in "\\\"" else _escape_char(char)
        if current and len(current) + len(escaped) > room:
            pieces.append(current)
            current = ""
        current += escaped
    pieces.append(current)
    if len(pieces) == 1:
        return '"' + pieces[0] + '"'
    return "(\n" + "\n".join(f'{indent}    "{piece}"' for piece in pieces) + "\n" + indent + ")"


def _wrap(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    lead = line[:len(line) - len(line.lstrip())]
    return textwrap.wrap(line, max(width, 20), initial_indent=lead, subsequent_indent=lead, break_long_words=False,
                         break_on_hyphens=False) or [line]
