"""Names a Python spec imports for readers and type checkers; omgen never runs them.

A Python spec (see docs/python-frontend.md) is parsed with libcst and never
imported by the compiler, so these decorators only have to exist: at run
time each returns what it decorates unchanged.

    from omgen import OutputMath
    from omgen.markers import mixin, no_cache, term
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from . import OutputMath

T = TypeVar("T")

__all__ = ["OutputMath", "mixin", "no_cache", "term"]


def mixin(name: Any = None) -> Any:
    """Class decorator: the class is a mixin (`@mixin` or `@mixin("oracle-centers")`)."""
    if isinstance(name, type):
        return name
    return lambda cls: cls


def no_cache(function: Any = None) -> Any:
    """Method decorator: the method is a helper (a plain, unmemoised function), like a leading '_'.

    Marks the function (`__omgen_no_cache__`) for code that runs a spec as ModulOM classes (tests).
    """
    def mark(f: Any) -> Any:
        f.__omgen_no_cache__ = True
        return f

    return mark(function) if callable(function) else mark


def term(*, shape: Any = None, math: str | None = None, new: bool = False, probe: bool = False,
         into: bool = False, outputs: Any = ()) -> Callable[[T], T]:
    """Method decorator: metadata of a term (documented shape, LaTeX math, new term of a mixin, a probe kept for
    inspection through Session that no entrypoint needs, a body that reads ``self.into`` (the held result it may
    write into; None when run as plain classes), the named parts of a tuple it returns).

    ``outputs`` marks the function (``__omgen_outputs__``) so that OutputMath gives a spec run as Python classes
    a method per part."""
    def mark(f: Any) -> Any:
        if outputs:
            f.__omgen_outputs__ = tuple(outputs)
        return f

    return mark
