"""The math sheet of one variant as plain data, then as one self-contained HTML page.

`build_sheet` turns a compiled variant (its TermGraph and generated source)
into a `Sheet`: one panel per block and mixin of the variant, one entry per
term definition with its math (MathML, or the raw LaTeX and a warning),
signature, shape and provenance, the term graph as SVG and the generated
code with one anchor per method. `render_html` lays it out with the jinja2
template; the page needs no network (inline CSS, SVG and script).
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import html
import io
import json
import keyword
import re
import tokenize
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import jinja2

from ..analyse import AnalysedTerm, TermGraph
from ..errors import Diagnostic, Location
from ..model import TermDef
from . import layout, mathml

ROLE_NOTES = {"prediction": "raw network output", "truth": "ground truth", "other": "other input"}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One definition of a term in one panel."""

    term: str
    anchor: str  # element id
    owner: str
    status: str  # "wins" | "super" (reached by super()) | "overridden"
    math: str | None  # MathML
    latex: str | None  # the LaTeX source (shown raw when math is None)
    math_problem: str
    expression: str | None  # one-line body, shown when there is no math
    caption: str
    more: str
    signature: str
    result: str  # "Tensor[N, 1, H, W]"
    location: str
    code_anchor: str | None
    marks: tuple[str, ...]  # "UPDATE", "NEW", "CHANGED", "AFFECTED", "ADDED"
    overrides: tuple[tuple[str, str], ...]  # (owner, anchor) of the definitions below
    overridden_by: tuple[str, str] | None  # (owner, anchor) of the winner
    depends: tuple[tuple[str, str], ...]  # (name, anchor)
    used_by: tuple[tuple[str, str], ...]
    entrypoints: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Panel:
    name: str
    kind: str  # "block" | "mixin" | "inputs"
    title: str
    doc: str
    location: str
    entries: tuple[Entry, ...]
    marks: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CodeView:
    path: str
    lines: tuple[str, ...]  # highlighted HTML, one per source line
    anchors: Mapping[int, tuple[str, ...]]  # 1-based line → extra ids


@dataclasses.dataclass(frozen=True)
class Sheet:
    om: str
    variant: str
    mixins: tuple[str, ...]
    spec_path: str
    doc: str
    variant_doc: str
    panels: tuple[Panel, ...]
    inputs: Panel
    config: tuple[dict, ...]
    entrypoints: tuple[dict, ...]
    graph_svg: str
    graph_engine: str
    code: CodeView
    term_names: tuple[str, ...]
    math_count: int
    nav: tuple[tuple[str, str, bool], ...] = ()  # (label, href, current)
    diff: dict | None = None
    allowances: tuple[dict, ...] = ()  # {name, reason, location}: what the spec may call beyond the purity check


class MathCache:
    """Converts each LaTeX string once and warns once per bad definition."""

    def __init__(self, root: Path):
        self.root = root
        self.converter_missing = not mathml.available()
        self.warnings: list[Diagnostic] = []
        self._seen: set[tuple[Location, str]] = set()
        self._lines: dict[str, list[str]] = {}
        self._converted: dict[str, mathml.MathResult] = {}

    def convert(self, latex: str) -> mathml.MathResult:
        if latex not in self._converted:
            self._converted[latex] = mathml.to_mathml(latex)
        return self._converted[latex]

    def for_definition(self, term: str, definition: TermDef) -> mathml.MathResult | None:
        if not definition.math:
            return None
        result = self.convert(definition.math)
        if result.mathml is None and not self.converter_missing:
            where = self.math_location(definition)
            key = (where, result.problem)
            if key not in self._seen:
                self._seen.add(key)
                self.warnings.append(Diagnostic(where, f"the math of term '{term}' in '{definition.owner}' cannot be "
                                                f"rendered: {result.problem}", "the sheet shows its LaTeX source",
                                                severity="warning"))
        return result

    def math_location(self, definition: TermDef) -> Location:
        """The line of `math:` under the term's key (the spec model keeps only the key's position)."""
        loc = definition.location
        lines = self._read(loc.file)
        if not lines or not 0 < loc.line <= len(lines):
            return loc
        key_line = lines[loc.line - 1]
        indent = len(key_line) - len(key_line.lstrip())
        match = re.search(r"[{,\s]math\s*:\s*", key_line)
        if match:
            return Location(loc.file, loc.line, match.end() + 1)
        for number in range(loc.line + 1, len(lines) + 1):
            text = lines[number - 1]
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            if len(text) - len(text.lstrip()) <= indent:
                break
            match = re.match(r"(\s*)math\s*:\s*", text)
            if match:
                return Location(loc.file, number, match.end() + 1)
        return loc

    def _read(self, file: str) -> list[str]:
        if file not in self._lines:
            path = Path(file)
            candidates = [path] if path.is_absolute() else [self.root / path, path]
            self._lines[file] = []
            for candidate in candidates:
                try:
                    self._lines[file] = candidate.read_text(encoding="utf-8").splitlines()
                    break
                except (OSError, UnicodeDecodeError):
                    continue
        return self._lines[file]


def _split_doc(doc: str) -> tuple[str, str]:
    doc = " ".join(doc.split())
    match = re.search(r"(?<=[.:;])\s+(?=[A-Z(])", doc)
    if match and match.start() < len(doc) - 1:
        return doc[:match.start()], doc[match.end():]
    return doc, ""


def _shape_text(shape: Sequence[Any] | None) -> str:
    return "" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def _one_line_expression(definition: TermDef) -> str | None:
    source = definition.code.source.strip()
    if "\n" not in source and source.startswith("return "):
        return source[len("return "):]
    return None


def def_anchor(owner: str, term: str) -> str:
    return f"def-{owner}-{term}"


def term_anchor(name: str) -> str:
    return f"term-{name}"


def input_anchor(name: str) -> str:
    return f"input-{name}"


def build_sheet(graph: TermGraph, source: str, code_path: str, maths: MathCache, *, engine: str = "auto",
                marks: Mapping[str, str] | None = None, diff: dict | None = None) -> Sheet:
    """The sheet of one variant; `marks` (term → CHANGED / AFFECTED / ADDED) come from a diff."""
    spec = graph.spec
    om = graph.om
    marks = dict(marks or {})
    blocks = spec.blocks_by_name
    in_variant = set(om.linearisation)
    methods = {info.definition: info for term in graph.terms for info in term.definitions}
    anchor_of = {name: (input_anchor(name) if graph.is_input(name) else term_anchor(name))
                 for name in [*spec.inputs_by_name, *graph.by_name]}
    users = {e.name: set(graph.needed_for(e.outputs)) for e in spec.entrypoints}

    def entry(term: AnalysedTerm, position: int) -> Entry:
        resolved = term.term
        definition = resolved.chain[position]
        info = methods.get(definition)
        status = "wins" if position == 0 else ("super" if info is not None else "overridden")
        converted = maths.for_definition(term.name, definition)
        caption, more = _split_doc(definition.doc or (resolved.doc if position == 0 else ""))
        params = info.params if info is not None else ()
        result = resolved.type + _shape_text(resolved.shape)
        kind = blocks[definition.owner].kind
        below = resolved.chain[position + 1:]
        entry_marks = []
        if below:
            entry_marks.append("UPDATE")
        if definition.is_new and kind == "mixin":
            entry_marks.append("NEW")
        if position == 0 and term.name in marks:
            entry_marks.append(marks[term.name])
        return Entry(
            term=term.name,
            anchor=term_anchor(term.name) if position == 0 else def_anchor(definition.owner, term.name),
            owner=definition.owner,
            status=status,
            math=converted.mathml if converted else None,
            latex=definition.math,
            math_problem=converted.problem if converted else "",
            expression=None if definition.math else _one_line_expression(definition),
            caption=caption,
            more=more,
            signature=f"{term.name}({', '.join(params)})",
            result=result,
            location=str(definition.location),
            code_anchor=f"code-{info.method}" if info is not None else None,
            marks=tuple(entry_marks),
            overrides=tuple((d.owner, def_anchor(d.owner, term.name)) for d in below),
            overridden_by=(resolved.winner.owner, term_anchor(term.name)) if position else None,
            depends=tuple((p, anchor_of[p]) for p in term.params) if position == 0 else (),
            used_by=tuple((u, anchor_of[u]) for u in graph.dependents(term.name)) if position == 0 else (),
            entrypoints=tuple(e for e, needed in users.items() if term.name in needed) if position == 0 else (),
        )

    positions = {(d.owner, t.name): i for t in graph.terms for i, d in enumerate(t.term.chain)}
    ordered = [b for b in spec.blocks if b.kind == "block" and b.name in in_variant]
    ordered += [spec.block(name) for name in om.linearisation if blocks[name].kind == "mixin"]
    panels = []
    for block in ordered:
        entries = tuple(entry(graph.by_name[d.name], positions[(block.name, d.name)])
                        for d in block.terms if (block.name, d.name) in positions)
        title = block.name if block.kind == "block" else f"{block.name} (mixin)"
        panels.append(Panel(block.name, block.kind, title, " ".join(block.doc.split()), str(block.location), entries))

    inputs = Panel("inputs", "inputs", "Inputs", "Tensors handed in at call time.", str(spec.location), tuple(
        Entry(term=i.name, anchor=input_anchor(i.name), owner="inputs", status="wins", math=None, latex=None,
              math_problem="", expression=None, caption=" ".join(i.doc.split()), more="",
              signature=i.name, result=i.type + _shape_text(i.shape) + (f" ({i.dtype})" if i.dtype != "any" else ""),
              location=str(i.location), code_anchor=None, marks=(ROLE_NOTES.get(i.role, i.role),), overrides=(),
              overridden_by=None, depends=(),
              used_by=tuple((u, anchor_of[u]) for u in graph.dependents(i.name)) if i.name in graph._graph else (),
              entrypoints=()) for i in spec.inputs))

    values = om.config
    set_by_variant = {name for name, _, _ in om.variant.config}
    config = tuple({"name": c.name, "type": c.type, "value": _python_literal(values[c.name]),
                    "default": _python_literal(c.default), "doc": c.doc, "changed": c.name in set_by_variant}
                   for c in spec.config)
    entrypoints = tuple({"name": e.name, "class": e.class_name, "doc": e.doc,
                         "outputs": [(o, anchor_of.get(o, "")) for o in e.outputs]} for e in spec.entrypoints)
    code = code_view(source, code_path)
    svg, used_engine = layout.render_svg(graph_spec(graph, marks), engine)
    math_count = sum(1 for p in panels for e in p.entries if e.math)
    return Sheet(om=spec.om, variant=om.variant.name, mixins=om.variant.mixins, spec_path=spec.path,
                 doc=" ".join(spec.doc.split()), variant_doc=" ".join(om.variant.doc.split()), panels=tuple(panels),
                 inputs=inputs, config=config, entrypoints=entrypoints, graph_svg=svg, graph_engine=used_engine,
                 code=code, term_names=tuple(t.name for t in graph.terms), math_count=math_count, diff=diff,
                 allowances=tuple({"name": a.name, "reason": a.reason, "location": str(a.location)}
                                  for a in spec.allowances))


def _python_literal(value: Any) -> str:
    if isinstance(value, list) and len(value) > 12:
        return "[" + ", ".join(map(repr, value[:10])) + f", … ({len(value)} values)]"
    return repr(value)


def graph_spec(graph: TermGraph, marks: Mapping[str, str] | None = None) -> layout.GraphSpec:
    """Every input and term (inputs no term uses are left out), edges from dependencies."""
    marks = marks or {}
    spec = graph.spec
    used = {p for t in graph.terms for p in t.params}
    nodes = [layout.GraphNode(i.name, "input", "#" + input_anchor(i.name), None,
                              f"input {i.name}: {i.type}{_shape_text(i.shape)}") for i in spec.inputs if i.name in used]
    for term in graph.terms:
        owner = term.term.winner.owner
        kind = spec.block(owner).kind
        css = ("changed",) if marks.get(term.name) in ("CHANGED", "ADDED") else ()
        css += ("affected",) if marks.get(term.name) == "AFFECTED" else ()
        nodes.append(layout.GraphNode(term.name, kind, "#" + term_anchor(term.name),
                                      f"#code-{term.definitions[0].method}",
                                      f"{term.name}: {term.term.type}{_shape_text(term.term.shape)} ({owner})", css))
    edges = tuple((p, t.name) for t in graph.terms for p in t.params)
    return layout.GraphSpec(f"{spec.om}.{graph.om.variant.name}", tuple(nodes), edges)


# ---------------------------------------------------------------- generated code

_TOKEN_CLASS = {tokenize.COMMENT: "c", tokenize.STRING: "s", tokenize.NUMBER: "n"}


def highlight_python(source: str) -> list[str]:
    """HTML of each source line, with spans for keywords, strings, comments, numbers and defined names."""
    lines = source.splitlines()
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans: list[tuple[int, int, str]] = []
    previous = ""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            css = _TOKEN_CLASS.get(token.type)
            if token.type == tokenize.NAME:
                if keyword.iskeyword(token.string):
                    css = "k"
                elif previous in ("def", "class"):
                    css = "f"
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                previous = token.string
            if css:
                (l0, c0), (l1, c1) = token.start, token.end
                spans.append((starts[l0 - 1] + c0, starts[l1 - 1] + c1, css))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        spans = []
    out: list[str] = []
    span_index = 0
    for number, line in enumerate(lines):
        begin, end = starts[number], starts[number] + len(line)
        parts, cursor = [], begin
        while span_index < len(spans) and spans[span_index][1] <= begin:
            span_index += 1
        index = span_index
        while index < len(spans) and spans[index][0] < end:
            s0, s1, css = spans[index]
            s0, s1 = max(s0, begin), min(s1, end)
            if s0 > cursor:
                parts.append(html.escape(source[cursor:s0], quote=False))
            parts.append(f'<span class="{css}">{html.escape(source[s0:s1], quote=False)}</span>')
            cursor = s1
            index += 1
        parts.append(html.escape(source[cursor:end], quote=False))
        out.append("".join(parts))
    return out


def code_view(source: str, path: str) -> CodeView:
    """The generated module, with `code-<method>` on the comment block above each method of class Terms
    and `code-fn-<name>` on each module-level function."""
    lines = source.splitlines()
    anchors: dict[int, list[str]] = {}
    in_terms = False
    for number, line in enumerate(lines, 1):
        if line.startswith("class "):
            in_terms = line.startswith("class Terms(")
            continue
        match = re.match(r"def (\w+)\(", line)
        if match:
            anchors.setdefault(number, []).append(f"code-fn-{match[1]}")
            continue
        match = re.match(r"    def (\w+)\(", line)
        if in_terms and match and match[1] != "__init__":
            top = number
            while top > 1 and lines[top - 2].startswith("    # "):
                top -= 1
            anchors.setdefault(top, []).append(f"code-{match[1]}")
    return CodeView(path, tuple(highlight_python(source)), {k: tuple(v) for k, v in anchors.items()})


# ---------------------------------------------------------------- HTML

@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("omgen.doc", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["safe_markup"] = lambda text: jinja2.utils.markupsafe.Markup(text)
    return env


def content_security_policy(script: str) -> str:
    """The page's only script is its own self-check, allowed by hash: whatever got past the escaping and the
    MathML allow-list would still not run, load or send anything."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def render_html(sheet: Sheet) -> str:
    env = _environment()
    script = env.loader.get_source(env, "selfcheck.js")[0]
    # term names are identifiers; '<' escaped all the same, so no text can close the data block
    terms = json.dumps(list(sheet.term_names)).replace("<", "\\u003c")
    Markup = jinja2.utils.markupsafe.Markup
    return env.get_template("sheet.html.jinja2").render(
        sheet=sheet, terms_json=Markup(terms), selfcheck_js=Markup(script), csp=content_security_policy(script))


def render_index(om: str, spec_path: str, pages: Iterable[tuple[str, str, str, int]]) -> str:
    """pages: (variant, href, mixins text, terms)."""
    return _environment().get_template("index.html.jinja2").render(om=om, spec_path=spec_path, pages=list(pages))
