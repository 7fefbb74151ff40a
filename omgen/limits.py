"""Bounds on what a spec may ask of the compiler, checked before the work they bound.

A spec may come from anyone. Every file is checked to be a regular file of
bounded size before it is read (a FIFO would block, /dev/zero would never
end), decoded as UTF-8 with the position of a bad byte, and every body is
measured with Python's own tokenizer and parser before libcst sees it, so
that nesting deep enough to overflow a recursive parser or visitor is one
error line instead of a crash. docs/security.md lists the limits.
"""
from __future__ import annotations

import ast
import os
import stat
import tokenize
import io
from pathlib import Path

from .errors import Location, SpecErrors


def _env_int(name: str, default: int) -> int:
    try:
        return max(int(os.environ.get(name, default)), 1)
    except ValueError:
        return default


MAX_FILE_BYTES = _env_int("OMGEN_MAX_SPEC_BYTES", 4 * 1024 * 1024)  # per spec or included file
MAX_INCLUDE_DEPTH = 16  # a spec including a file including a file ...
MAX_INCLUDED_FILES = 256  # files read for one spec
MAX_YAML_DEPTH = 24  # mappings and sequences inside each other
MAX_NESTING = 40  # brackets, unary operators, statements: depth of one body's syntax tree
MAX_STATEMENT_TOKENS = 4000  # tokens in one logical line
MAX_TERMS = 2000  # terms of one variant (the generated module stays importable and scriptable)
MAX_SUPER_CHAIN = 32  # definitions of one term reached through super()
MAX_MIXINS = 64  # mixins in one variant
MAX_BASE_DEPTH = 64  # a block's chain of bases


def read_text(path: Path, display: str, site: Location | None = None) -> tuple[str, bytes]:
    """The text and bytes of a spec file: a regular file, at most MAX_FILE_BYTES, valid UTF-8.

    The file is opened non-blocking (a FIFO cannot stall the open) and checked
    through the open descriptor, so a swap between check and read changes nothing.
    """
    where = site or Location(display)
    prefix = f"include '{display}': " if site else ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SpecErrors.single(where, f"cannot read spec file '{display}': {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
            raise SpecErrors.single(where, f"{prefix}'{display}' is {kind}", "a spec must be a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _too_big(where, prefix, display)
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpecErrors.single(where, f"cannot read spec file '{display}': {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(where, prefix, display)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        bad = Location(display, line, col)
        raise SpecErrors.single(where if site else bad, f"{prefix}{bad}: not UTF-8 (byte 0x{data[exc.start]:02x})"
                                if site else f"not UTF-8 (byte 0x{data[exc.start]:02x})",
                                "save the file as UTF-8") from None
    return text, data


def _too_big(where: Location, prefix: str, display: str) -> SpecErrors:
    return SpecErrors.single(where, f"{prefix}'{display}' is larger than {MAX_FILE_BYTES} bytes",
                             "raise OMGEN_MAX_SPEC_BYTES if the file is really a spec")


def check_python_nesting(source: str) -> tuple[int, int, str] | None:
    """(line, col, what) of the first place `source` nests beyond the limits, or None.

    Python's tokenizer is iterative, so it can measure what would overflow a
    recursive parser: brackets and runs of prefix operators are counted
    before anything builds a tree; then the tree's depth is measured with an
    explicit stack (a chain `a or b or c` counts as nested, as libcst builds it).
    """
    depth, run, tokens = 0, 0, 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                tokens = 0
                continue
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                continue
            tokens += 1
            if tokens > MAX_STATEMENT_TOKENS:
                return token.start[0], token.start[1], f"a statement of more than {MAX_STATEMENT_TOKENS} tokens"
            text = token.string
            if text in ("(", "[", "{"):
                depth += 1
                if depth > MAX_NESTING:
                    return token.start[0], token.start[1], f"brackets nested more than {MAX_NESTING} deep"
            elif text in (")", "]", "}"):
                depth = max(depth - 1, 0)
            if token.type == tokenize.OP and text in ("-", "+", "~", "*", "**") or text in ("not", "await", "lambda"):
                run += 1
                if run > MAX_NESTING:
                    return token.start[0], token.start[1], f"more than {MAX_NESTING} operators in a row"
            else:
                run = 0
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None  # the parser reports the syntax error with its position
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # reported by the caller's parser
    except (RecursionError, MemoryError):
        return 1, 0, "an expression too deeply nested to parse"
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, level = stack.pop()
        extra = len(node.values) - 1 if isinstance(node, ast.BoolOp) else 0
        extra += len(node.ops) - 1 if isinstance(node, ast.Compare) else 0
        level += 1 + extra
        if level > MAX_NESTING:
            return getattr(node, "lineno", 1), getattr(node, "col_offset", 0), f"code nested more than {MAX_NESTING} deep"
        stack.extend((child, level) for child in ast.iter_child_nodes(node))
    return None
