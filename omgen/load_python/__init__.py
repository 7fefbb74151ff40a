"""Python frontend: ModulOM-style classes → `Spec`, read with Python's ast and libcst, never imported or run.

A spec file holds classes deriving from `omgen.OutputMath`. Methods are
terms, `self.term()` is a dependency, `super().term()` the overridden
definition, annotated class attributes are config; `om`, `compose`,
`inputs`, `variants` and `entrypoints` are module-level literals. ModulOM's
run-time cache policy becomes static: helpers (`_name`, `@no_cache`) are
plain functions, literal "mode" calls (`self.semantic_pred('logits')`) are
specialised into terms of their own. Each method body is rewritten into the
canonical body form of the YAML frontend (terms, inputs and config as bare
names, `super()` for the overridden definition), keeping a map from body
lines to file lines so that every later error points at the .py file.
The file's structure, positions and literals come from Python's `ast`
(fast, nothing runs); each method body is rewritten with libcst, which
keeps its formatting.
Stages, one module each: source (the file, positions, literals), read (module level,
classes, methods), modes (literal mode calls made static), rewrite (method bodies),
build (the Spec). See docs/python-frontend.md.
"""
from __future__ import annotations

from pathlib import Path

from .. import limits
from ..errors import ErrorCollector, Location, SpecErrors
from ..model import Spec
from ..paths import display_path, project_root
from .build import Builder
from .modes import specialised_name
from .read import ALLOWED_IMPORTS, ModuleReader
from .source import LINE_BREAKS_PYTHON_DOES_NOT_SEE, SourceFile

__all__ = ["ALLOWED_IMPORTS", "load_spec", "specialised_name"]


def load_spec(path: str | Path, display_root: Path | None = None) -> Spec:
    """Parse a Python spec into a Spec, or raise SpecErrors; the file is never imported or run."""
    path = Path(path)
    root = display_root or project_root(path)
    display = display_path(path, root)
    text, data = limits.read_text(path, display)
    too_deep = limits.check_python_nesting(text)
    if too_deep:  # before ast and libcst, whose parsers and visitors recurse
        line, col, what = too_deep
        raise SpecErrors.single(Location(display, line, col + 1), f"spec too complex: {what}",
                                "split it into terms or functions")
    if "\x00" in text:
        raise SpecErrors.single(Location(display, text[:text.index("\x00")].count("\n") + 1), "NUL byte in a Python spec")
    odd = next((i for i, c in enumerate(text) if c in LINE_BREAKS_PYTHON_DOES_NOT_SEE), None)
    if odd is not None:  # Python's tokenizer reads one line where str.splitlines (and libcst positions) see two
        line = text[:odd].count("\n") + 1
        raise SpecErrors.single(Location(display, line, odd - (text.rfind("\n", 0, odd) + 1) + 1),
                                f"raw {LINE_BREAKS_PYTHON_DOES_NOT_SEE[text[odd]]} in a Python spec",
                                f"write it as the escape {text[odd].encode('unicode_escape').decode()} inside a string")
    errors = ErrorCollector()
    try:
        file = SourceFile(path, display, text, errors, root)  # Python's ast: positions and syntax errors; parsing runs nothing
    except SyntaxError as exc:
        raise SpecErrors.single(Location(display, exc.lineno or 1, exc.offset or 1),
                                f"syntax error: {exc.msg}") from None
    reader = ModuleReader(file)
    reader.read()
    errors.raise_if_any()
    return Builder(reader).build()
