"""Which terms change between two variants.

A term is CHANGED when the definitions its value is computed by differ
(owner, body, math, type or shape of the winner or of any definition it
reaches through super()) or when a config value one of them reads differs;
ADDED when only variant B has it; REMOVED when only A has it; AFFECTED when
its own definitions are the same but it is computed from a changed or added
term.
"""
from __future__ import annotations

from typing import Any

from ..analyse import AnalysedTerm, TermGraph
from .sheet import MathCache, term_anchor


def _fingerprint(term: AnalysedTerm) -> tuple:
    return (term.term.type, term.term.shape, term.term.math,
            tuple((i.definition.owner, i.definition.code.source, i.definition.math) for i in term.definitions))


def _why(a: AnalysedTerm, b: AnalysedTerm, config_a: dict, config_b: dict) -> str:
    owners_a = " → ".join(i.definition.owner for i in a.definitions)
    owners_b = " → ".join(i.definition.owner for i in b.definitions)
    reasons = []
    if owners_a != owners_b:
        reasons.append(f"defined by {owners_a} in A, {owners_b} in B")
    elif _fingerprint(a) != _fingerprint(b):
        reasons.append("definition differs")
    for name in sorted({c for i in b.definitions for c in i.config} | {c for i in a.definitions for c in i.config}):
        if config_a.get(name) != config_b.get(name):
            reasons.append(f"{name}: {config_a.get(name)!r} → {config_b.get(name)!r}")
    return "; ".join(reasons)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def diff_marks(graph_a: TermGraph, graph_b: TermGraph, maths: MathCache) -> tuple[dict[str, str], dict]:
    """(term → CHANGED / ADDED / AFFECTED marks for the sheet of B, the data of the changes table)."""
    config_a, config_b = graph_a.om.config, graph_b.om.config
    a_terms, b_terms = graph_a.by_name, graph_b.by_name
    marks: dict[str, str] = {}
    why: dict[str, str] = {}
    for name, b in b_terms.items():
        a = a_terms.get(name)
        if a is None:
            marks[name] = "ADDED"
            continue
        reason = _why(a, b, config_a, config_b)
        if reason:
            marks[name] = "CHANGED"
            why[name] = reason
    direct = set(marks)
    for term in graph_b.terms:
        if term.name not in marks and direct & set(graph_b.needed_for([term.name])):
            marks[term.name] = "AFFECTED"
            sources = sorted(direct & set(graph_b.needed_for([term.name])), key=list(b_terms).index)
            why[term.name] = "computed from " + ", ".join(sources[:4]) + (" …" if len(sources) > 4 else "")
    removed = [name for name in a_terms if name not in b_terms]

    def math_of(graph: TermGraph, name: str) -> tuple[str | None, str | None]:
        term = graph.by_name.get(name)
        if term is None or not term.term.math:
            return None, None
        return maths.convert(term.term.math).mathml, term.term.math

    rows = []
    kinds_order = {"CHANGED": 0, "ADDED": 1, "REMOVED": 2, "AFFECTED": 3}
    for name in [*b_terms, *removed]:
        kind = marks.get(name, "REMOVED" if name in removed else None)
        if kind is None:
            continue
        a_math, a_latex = math_of(graph_a, name)
        b_math, b_latex = math_of(graph_b, name)
        a_owner = a_terms[name].term.winner.owner if name in a_terms else "—"
        b_owner = b_terms[name].term.winner.owner if name in b_terms else "—"
        rows.append({"name": name, "kind": kind, "why": why.get(name, ""),
                     "anchor": term_anchor(name) if name in b_terms else "",
                     "a_math": a_math, "a_latex": a_latex, "a_owner": a_owner,
                     "b_math": b_math, "b_latex": b_latex, "b_owner": b_owner})
    rows.sort(key=lambda r: kinds_order[r["kind"]])
    config = [(n, _short(config_a.get(n)), _short(config_b.get(n))) for n in config_b if config_a.get(n) != config_b.get(n)]
    counts = {k: sum(1 for r in rows if r["kind"] == k) for k in kinds_order}
    summary = (f"{counts['CHANGED']} term(s) changed, {counts['ADDED']} added, {counts['REMOVED']} removed, "
               f"{counts['AFFECTED']} computed from them; {len(config)} config value(s) differ.")
    data = {"a": graph_a.om.variant.name, "b": graph_b.om.variant.name, "terms": rows, "config": config,
            "summary": summary, "marks": dict(marks)}
    return marks, data
