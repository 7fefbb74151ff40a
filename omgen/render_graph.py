"""`omgen graph`: the term DAG as Graphviz dot, Mermaid, or SVG (through `dot` when installed)."""
from __future__ import annotations

import shutil
import subprocess

from .analyse import TermGraph
from .errors import Location, SpecErrors


def _selection(graph: TermGraph, entrypoint: str | None) -> tuple[str, ...]:
    if entrypoint is None:
        names = [i.name for i in graph.spec.inputs] + [t.name for t in graph.terms]
        used = {p for t in graph.terms for p in t.params} | {t.name for t in graph.terms}
        return tuple(n for n in names if n in used)
    for decl in graph.spec.entrypoints:
        if decl.name == entrypoint:
            return graph.needed_for(decl.outputs)
    raise SpecErrors.single(graph.spec.location, f"unknown entrypoint '{entrypoint}'",
                            "entrypoints: " + ", ".join(e.name for e in graph.spec.entrypoints))


def render_graph(graph: TermGraph, fmt: str, entrypoint: str | None = None) -> str:
    names = _selection(graph, entrypoint)
    chosen = set(names)
    edges = [(p, t.name) for t in graph.terms if t.name in chosen for p in t.params if p in chosen]
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for name in names:
            lines.append(f"    {name}[/{name}/]" if graph.is_input(name) else f"    {name}[{name}]")
        lines += [f"    {a} --> {b}" for a, b in edges]
        return "\n".join(lines) + "\n"
    dot = _dot(graph, names, edges)
    if fmt == "dot":
        return dot
    executable = shutil.which("dot")
    if executable is None:
        raise SpecErrors.single(Location("omgen graph"), "--format svg needs Graphviz's `dot`",
                                "install graphviz (apt-get install graphviz) or use --format dot")
    return subprocess.run([executable, "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout


def _dot(graph: TermGraph, names: tuple[str, ...], edges: list[tuple[str, str]]) -> str:
    lines = [f'digraph "{graph.spec.om}.{graph.om.variant.name}" {{', "    rankdir=LR;", "    node [fontname=Helvetica];"]
    for name in names:
        if graph.is_input(name):
            lines.append(f'    {name} [shape=parallelogram, style=filled, fillcolor="#e8f0fe"];')
        else:
            owner = graph.by_name[name].term.winner.owner
            mixin = graph.spec.block(owner).kind == "mixin"
            fill = "#fde9c8" if mixin else "#ffffff"
            lines.append(f'    {name} [shape=box, style=filled, fillcolor="{fill}", tooltip="{owner}"];')
    lines += [f"    {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
