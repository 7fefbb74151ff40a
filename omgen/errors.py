"""Spec errors: every one carries the spec location it comes from.

Stages collect errors instead of stopping at the first, and raise them
together as one `SpecErrors`, so a user fixes a spec in one pass.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence


@dataclasses.dataclass(frozen=True, order=True)
class Location:
    """A position in a spec file (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{max(self.col, 1)}"

    def shifted(self, lines: int, col: int | None = None) -> "Location":
        return Location(self.file, self.line + lines, self.col if col is None else col)


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    location: Location
    message: str
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return one_line(text)


def one_line(text: str) -> str:
    """`text` with every character that is not printable escaped: spec text cannot break a diagnostic's line
    or hide part of it (terminal escapes, bidi controls)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SpecErrors(Exception):
    """One or more errors in a spec; str() is one line per error."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(sorted(set(diagnostics), key=lambda d: (d.location, d.message)))
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def single(cls, location: Location, message: str, hint: str = "") -> "SpecErrors":
        return cls([Diagnostic(location, message, hint)])


class ErrorCollector:
    """Accumulates diagnostics; `raise_if_any` ends a stage that found errors."""

    def __init__(self) -> None:
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []

    def error(self, location: Location, message: str, hint: str = "") -> None:
        self.errors.append(Diagnostic(location, message, hint))

    def warning(self, location: Location, message: str, hint: str = "") -> None:
        self.warnings.append(Diagnostic(location, message, hint, severity="warning"))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            (self.errors if diagnostic.severity == "error" else self.warnings).append(diagnostic)

    def raise_if_any(self) -> None:
        if self.errors:
            raise SpecErrors(self.errors)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A 'did you mean' hint, or '' when nothing is close. Close: within a third of the name's length in edits,
    or similar by difflib's ratio (>= 0.6). Ranked: a term's own stem first (`heat_prob` -> `heat`: ModulOM's
    `_pred` / `_prob` / `_truth` suffixes name variants of one quantity), then the most similar, then the
    fewest edits, then alphabetically."""
    import difflib

    ranked = []
    for candidate in set(candidates):
        distance = _edit_distance(name, candidate)
        ratio = difflib.SequenceMatcher(None, name, candidate).ratio()
        stem = name.startswith(candidate + "_") or candidate.startswith(name + "_")
        if stem or distance <= max(1, len(name) // 3) or ratio >= 0.6:
            ranked.append((not stem, -ratio, distance, candidate))
    return f"did you mean '{min(ranked)[3]}'?" if ranked else ""


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), two rows."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]
