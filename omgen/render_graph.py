"""`omgen graph`: the term DAG as Graphviz dot, Mermaid, or SVG.

The nodes and the dot/SVG drawing are those of the math sheet
(omgen/doc): SVG uses Graphviz `dot` when installed and the pure-Python
layered layout otherwise.
"""
from __future__ import annotations

from .analyse import TermGraph
from .errors import SpecErrors


def _selection(graph: TermGraph, entrypoint: str | None) -> set[str] | None:
    if entrypoint is None:
        return None
    for decl in graph.spec.entrypoints:
        if decl.name == entrypoint:
            return set(graph.needed_for(decl.outputs))
    raise SpecErrors.single(graph.spec.location, f"unknown entrypoint '{entrypoint}'",
                            "entrypoints: " + ", ".join(e.name for e in graph.spec.entrypoints))


def render_graph(graph: TermGraph, fmt: str, entrypoint: str | None = None) -> str:
    from .doc.layout import GraphSpec, dot_source, render_svg
    from .doc.sheet import graph_spec

    drawing = graph_spec(graph)
    keep = _selection(graph, entrypoint)
    if keep is not None:
        drawing = GraphSpec(drawing.name, tuple(n for n in drawing.nodes if n.name in keep),
                            tuple((a, b) for a, b in drawing.edges if a in keep and b in keep))
    if fmt == "mermaid":
        lines = ["flowchart LR"]
        for node in drawing.nodes:
            lines.append(f"    {node.name}[/{node.name}/]" if node.kind == "input" else f"    {node.name}[{node.name}]")
        lines += [f"    {a} --> {b}" for a, b in drawing.edges]
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        return dot_source(drawing)
    return render_svg(drawing)[0]
