"""`omgen explain`: everything the compiler knows about one term of one variant."""
from __future__ import annotations

from .analyse import TermGraph
from .errors import SpecErrors, did_you_mean


def explain(graph: TermGraph, name: str) -> str:
    spec = graph.spec
    term = graph.by_name.get(name)
    if term is None:
        raise SpecErrors.single(spec.location, f"no term '{name}' in variant '{graph.om.variant.name}'",
                                did_you_mean(name, graph.by_name))
    resolved = term.term
    lines = [f"{name}: {resolved.type}" + (f" [{', '.join(map(str, resolved.shape))}]" if resolved.shape else "")
             + f"  (variant {graph.om.variant.name})"]
    if resolved.doc:
        lines.append(f"  {resolved.doc}")
    if resolved.math:
        lines.append(f"  math: {resolved.math}")
    lines.append("definitions (winner first):")
    reached = {info.definition for info in term.definitions}
    for position, definition in enumerate(resolved.chain):
        kind = spec.block(definition.owner).kind
        mark = "wins" if position == 0 else ("reached by super()" if definition in reached else "overridden, unused")
        lines.append(f"  {definition.owner} ({kind}) at {definition.location}: {mark}")
        for source_line in definition.code.source.rstrip().splitlines():
            lines.append(f"      {source_line}")
    inputs = [p for p in term.params if graph.is_input(p)]
    terms = [p for p in term.params if not graph.is_input(p)]
    config = sorted({c for info in term.definitions for c in info.config})
    lines.append(f"depends on terms: {', '.join(terms) or '-'}")
    lines.append(f"depends on inputs: {', '.join(inputs) or '-'}")
    lines.append(f"uses config: {', '.join(config) or '-'}")
    lines.append(f"used by terms: {', '.join(graph.dependents(name)) or '-'}")
    users = [e.name for e in spec.entrypoints if name in graph.needed_for(e.outputs)]
    lines.append(f"needed by entrypoints: {', '.join(users) or '- (Session only)'}")
    return "\n".join(lines) + "\n"
