"""`omgen doc` and `omgen diff --doc`: the math sheet of each variant as a self-contained HTML page.

One page per variant: a panel per block and mixin, each term with its math
(MathML), signature, shape and provenance, a mark on the terms a mixin
overrides, a legend, the term graph as SVG (each node links to its entry and
to its generated code) and the generated code itself, so every link works
offline. Bad LaTeX is a warning (file:line of the `math:` key), and that term
shows its LaTeX source.

The layout engine of the graph is Graphviz `dot` when installed, else a
pure-Python layered layout; `OMGEN_DOC_LAYOUT=python|dot|auto` forces one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import Diagnostic, Location
from . import mathml
from .diff import diff_marks
from .sheet import MathCache, build_sheet, render_html, render_index

__all__ = ["write_docs", "write_diff_doc", "render_pages"]


def _engine() -> str:
    engine = os.environ.get("OMGEN_DOC_LAYOUT", "auto").strip() or "auto"
    return engine if engine in ("auto", "dot", "python") else "auto"


def _code_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return f"generated/{path.parent.name}/{path.name}"


def _compile(spec_path: str, variants: Sequence[str]):
    from ..compile import compile_spec
    from ..paths import project_root

    result = compile_spec(spec_path, variants=list(variants))
    root = project_root(Path(spec_path))
    sources = {g.om.variant.name: (f.source, _code_path(f.path, root)) for g, f in zip(result.graphs, result.files)}
    return result, root, sources


def _missing_converter_warning(spec_location: Location) -> list[Diagnostic]:
    if mathml.available():
        return []
    return [Diagnostic(spec_location, "latex2mathml is not installed: the sheet shows math as LaTeX source",
                       "pip install 'omgen[doc]'", severity="warning")]


def render_pages(spec_path: str, variants: Sequence[str] = (), engine: str | None = None
                 ) -> tuple[dict[str, str], list[Diagnostic]]:
    """{file name: html} for the selected variants (and index.html), and the warnings; writes nothing."""
    result, root, sources = _compile(spec_path, variants)
    maths = MathCache(root)
    engine = engine or _engine()
    names = [g.om.variant.name for g in result.graphs]
    files = {g.om.variant.name: f"{g.om.variant.module_name}.html" for g in result.graphs}
    nav = tuple((name, files[name], False) for name in names)
    pages: dict[str, str] = {}
    index_rows = []
    for graph in result.graphs:
        name = graph.om.variant.name
        source, code_path = sources[name]
        sheet = build_sheet(graph, source, code_path, maths, engine=engine)
        sheet = _with_nav(sheet, nav, name)
        pages[files[name]] = render_html(sheet)
        composition = " + ".join(("base",) + graph.om.variant.mixins)
        if graph.om.variant.config:
            composition += " (config: " + ", ".join(n for n, _, _ in graph.om.variant.config) + ")"
        index_rows.append((name, files[name], composition, len(graph.terms)))
    pages["index.html"] = render_index(result.spec.om, result.spec.path, index_rows)
    warnings = _missing_converter_warning(result.spec.location) + maths.warnings
    return pages, warnings


def _with_nav(sheet, nav, current):
    import dataclasses

    return dataclasses.replace(sheet, nav=tuple((label, href, label == current) for label, href, _ in nav))


def _write(out_dir: str | Path, om: str, pages: dict[str, str]) -> Iterator[str]:
    folder = Path(out_dir) / om
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        path = folder / name
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        yield str(path)


def _print(warnings: Iterable[Diagnostic]) -> None:
    for warning in warnings:
        print(warning, file=sys.stderr)


def write_docs(spec_path: str, variants: list[str], out_dir: str) -> Iterable[str]:
    """Write DIR/<om>/<variant>.html for each variant (all by default) and DIR/<om>/index.html."""
    from ..compile import load

    pages, warnings = render_pages(spec_path, variants)
    _print(warnings)
    om = load(spec_path).om
    for path in _write(out_dir, om, pages):
        yield f"wrote {path}"


def render_diff_page(spec_path: str, variant_a: str, variant_b: str, engine: str | None = None
                     ) -> tuple[str, str, list[Diagnostic], dict]:
    """(om, html, warnings, diff data) of the sheet of variant B marking what changes from variant A."""
    import dataclasses

    result, root, sources = _compile(spec_path, [variant_a, variant_b])
    graph_a, graph_b = result.graphs[0], result.graphs[-1]
    maths = MathCache(root)
    marks, diff = diff_marks(graph_a, graph_b, maths)
    source, code_path = sources[graph_b.om.variant.name]
    sheet = build_sheet(graph_b, source, code_path, maths, engine=engine or _engine(), marks=marks, diff=diff)
    changed_owners = {e.owner for p in sheet.panels for e in p.entries if set(e.marks) & {"CHANGED", "ADDED"}}
    panels = tuple(dataclasses.replace(p, marks=("CHANGED",)) if p.name in changed_owners else p for p in sheet.panels)
    sheet = dataclasses.replace(sheet, panels=panels)
    warnings = _missing_converter_warning(result.spec.location) + maths.warnings
    return result.spec.om, render_html(sheet), warnings, diff


def write_diff_doc(spec_path: str, variant_a: str, variant_b: str, out_dir: str) -> Iterable[str]:
    """Write DIR/<om>/diff-<A>-<B>.html: the sheet of B with the terms that differ from A marked."""
    om, page, warnings, diff = render_diff_page(spec_path, variant_a, variant_b)
    _print(warnings)
    name = f"diff-{variant_a}-{variant_b}.html".replace("/", "_")
    for path in _write(out_dir, om, {name: page}):
        yield f"wrote {path} ({diff['summary']})"
