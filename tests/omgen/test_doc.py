"""`omgen doc` / `omgen diff --doc`: math conversion, warnings, the fallback graph layout, diff marks, determinism.

The browser checks (rendered math, console, screenshot) are in tests/test_doc_browser.py.
"""
from __future__ import annotations

import html.parser
import re
import shutil
import sys
from pathlib import Path

import pytest

from omgen.cli import main
from omgen.compile import build_graph, load, select_variants
from omgen.doc import layout, mathml, render_pages, write_docs, write_diff_doc
from omgen.doc.diff import diff_marks
from omgen.doc.sheet import MathCache, graph_spec
from omgen.errors import SpecErrors

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "specs/examples/toy_peaks.yaml"
PANOPTIC = ROOT / "specs/panoptic.yaml"

needs_latex2mathml = pytest.mark.skipif(not mathml.available(), reason="the 'doc' extra (latex2mathml) is not installed")


class _Links(html.parser.HTMLParser):
    """ids, href targets and the entry of each term (with whether it holds a <math>)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.entries: dict[str, bool] = {}
        self._entry: str | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if self._entry is not None and tag == "div":
            self._depth += 1
        if tag == "div" and (attrs.get("id") or "").startswith("term-"):
            self._entry = attrs["id"][len("term-"):]
            self.entries[self._entry] = False
            self._depth = 1
        if tag == "math" and self._entry is not None:
            self.entries[self._entry] = True

    def handle_endtag(self, tag):
        if self._entry is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._entry = None


def parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


def graph_of(path: Path, variant: str):
    spec = load(path)
    return build_graph(spec, select_variants(spec, [variant])[0])


# ---------------------------------------------------------------- math

@needs_latex2mathml
def test_math_converts_to_mathml_with_unicode_letter_variants():
    result = mathml.to_mathml(r"\mathbf{ID}^*_{pan}(p) := \mathrm{mean}_{p \in \mathbb{T}^*} \Phi(p)")
    assert result.problem == "" and result.mathml.startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
    assert "&#x1D408;&#x1D403;" in result.mathml.replace("</mi><mi mathvariant=\"normal\">", "")  # bold I, D
    assert "<mi>mean</mi>" in result.mathml  # upright operator name in one <mi>
    assert "&#x1D54B;" in result.mathml  # double-struck T
    assert 'mathvariant="bold"' not in result.mathml  # MathML Core ignores it; letters carry the style
    assert 'alttext="\\mathbf{ID}' in result.mathml


@needs_latex2mathml
@pytest.mark.parametrize("latex, problem", [
    (r"\frac{a", "unbalanced braces"),
    (r"a}", "unbalanced braces"),
    (r"a^", "missing"),
    (r"\foo{x}", "unknown command \\foo"),
    (r"\left( x", "left"),
    (r"\frac{a}", "missing argument"),
    ("", "empty"),
])
def test_bad_latex_is_reported_not_raised(latex, problem):
    result = mathml.to_mathml(latex)
    assert result.mathml is None
    assert problem in result.problem.lower() if problem.islower() else problem in result.problem


@needs_latex2mathml
def test_bad_latex_warns_at_the_math_line_and_shows_the_source(write_spec, tmp_path, capsys):
    text = TOY.read_text().replace(r"math: 'L := w \cdot \mathrm{MSE}(\Gamma, \Gamma^*)'",
                                   r"math: 'L := \frac{w \cdot \mathrm{MSE}(\Gamma, \Gamma^*)'")
    assert text != TOY.read_text()
    spec = write_spec(text, "bad.yaml")
    line = next(n for n, l in enumerate(text.splitlines(), 1) if r"\frac{w" in l)
    lines = list(write_docs(str(spec), ["base"], str(tmp_path / "out")))
    assert any(l.endswith("base.html") for l in lines)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.fullmatch(rf".*bad\.yaml:{line}:\d+: warning: the math of term 'loss' in 'Losses' cannot be rendered: "
                        r"unbalanced braces.*", err[0]), err
    page = (tmp_path / "out/toy_peaks/base.html").read_text()
    assert '<code class="raw-latex"' in page and r"L := \frac{w \cdot" in page
    links = parse(page)
    assert links.entries["loss"] is False and links.entries["heat_pred"] is True  # the others still render


def test_without_latex2mathml_the_page_shows_latex_and_warns_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "latex2mathml.converter", None)
    monkeypatch.setitem(sys.modules, "latex2mathml", None)
    pages, warnings = render_pages(str(TOY), ["base"], engine="python")
    assert [w.message for w in warnings] == ["latex2mathml is not installed: the sheet shows math as LaTeX source"]
    assert "<math" not in pages["base.html"] and pages["base.html"].count('class="raw-latex"') == 2


# ---------------------------------------------------------------- graph layout

def test_fallback_layout_layers_by_longest_path_and_links_every_node(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail("the python engine must not look for dot"))
    graph = graph_of(TOY, "base")
    spec = graph_spec(graph)
    assert layout.layers(spec) == {"heat_logits": 0, "points": 0, "heat_pred": 1, "peaks": 2, "loss": 2}
    svg, engine = layout.render_svg(spec, "python")
    assert engine == "python" and svg.startswith('<svg class="om-graph" data-engine="python"')
    assert sorted(layout.node_names(svg)) == sorted(["heat_logits", "points", "heat_pred", "peaks", "loss"])
    for term in ("heat_pred", "peaks", "loss"):
        assert f'href="#term-{term}"' in svg and f'href="#code-{term}"' in svg
    for name in ("heat_logits", "points"):
        assert f'href="#input-{name}"' in svg
    assert svg.count('class="edge"') == len(spec.edges) == 4


def test_fallback_layout_of_panoptic_routes_long_edges_and_is_acyclic():
    graph = graph_of(PANOPTIC, "learnable-centers")
    spec = graph_spec(graph)
    placed, chains, width, height = layout.layout(spec)
    levels = layout.layers(spec)
    for source, target in spec.edges:
        assert levels[source] < levels[target]
    for chain in chains:  # one point per layer crossed
        assert [placed[n].layer for n in chain] == list(range(placed[chain[0]].layer, placed[chain[-1]].layer + 1))
    real = [p for p in placed.values() if not p.dummy]
    for a in real:  # no two nodes overlap
        for b in real:
            if a is not b and a.layer == b.layer:
                assert abs(a.y - b.y) >= layout.NODE_HEIGHT
    assert all(0 <= p.x <= width and 0 <= p.y <= height for p in real)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_dot_svg_links_every_node():
    spec = graph_spec(graph_of(TOY, "oracle"))
    svg, engine = layout.render_svg(spec, "dot")
    assert engine == "dot" and "<!--" not in svg and "xlink:href" not in svg
    for term in ("heat_pred", "peaks", "loss"):
        assert f'href="#term-{term}"' in svg and f'href="#code-{term}"' in svg
        assert f'id="g-{term}"' in svg


# ---------------------------------------------------------------- pages

@pytest.fixture(scope="module")
def panoptic_pages():
    return render_pages(str(PANOPTIC), ["base", "learnable-centers"], engine="python")


@needs_latex2mathml
def test_page_has_an_entry_per_term_math_code_and_no_dangling_link(panoptic_pages):
    pages, warnings = panoptic_pages
    assert warnings == []
    assert set(pages) == {"base.html", "learnable_centers.html", "index.html"}
    graph = graph_of(PANOPTIC, "learnable-centers")
    page = pages["learnable_centers.html"]
    links = parse(page)
    assert set(links.entries) == {t.name for t in graph.terms}
    for term in graph.terms:
        assert links.entries[term.name] == bool(term.term.winner.math), term.name
        for info in term.definitions:
            assert f"code-{info.method}" in links.ids
    dangling = [h for h in links.hrefs if h.startswith("#") and h[1:] not in links.ids]
    assert dangling == []
    assert {h for h in links.hrefs if not h.startswith("#")} <= set(pages)  # the variant navigation
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page  # self-contained
    assert "<script src" not in page and "<link" not in page


@needs_latex2mathml
def test_mixin_overrides_are_marked_update_and_the_overridden_definitions_kept(panoptic_pages):
    page = panoptic_pages[0]["learnable_centers.html"]
    mixin = page[page.index('id="panel-learnable-centers"'):]
    mixin = mixin[:mixin.index("</section>")]
    assert mixin.count('<span class="mark UPDATE">UPDATE</span>') == 2  # centroids_truth, offset_loss
    assert '<span class="mark NEW">NEW</span>' in mixin  # closest_truth_centroid
    assert 'id="def-PanDLGroundtruth-centroids_truth"' in page
    overridden = page[page.index('id="def-PanDLGroundtruth-centroids_truth"') - 40:]
    assert overridden.startswith('<div class="term overridden') or 'class="term overridden' in overridden[:80]
    base = panoptic_pages[0]["base.html"]
    assert '<span class="mark UPDATE">' not in base.split('id="legend"')[0]
    assert "learnable-centers (mixin)" not in base


def test_diff_marks_changed_added_and_affected_terms():
    maths = MathCache(ROOT)
    marks, data = diff_marks(graph_of(TOY, "base"), graph_of(TOY, "oracle"), maths)
    assert marks == {"heat_pred": "CHANGED", "peaks": "AFFECTED", "loss": "AFFECTED"}
    marks, data = diff_marks(graph_of(TOY, "base"), graph_of(TOY, "strict"), maths)
    assert marks == {"peaks": "CHANGED"}
    assert data["config"] == [("threshold", "0.5", "0.9")]
    assert "threshold: 0.5 → 0.9" in data["terms"][0]["why"]
    marks, data = diff_marks(graph_of(PANOPTIC, "base"), graph_of(PANOPTIC, "learnable-centers"), maths)
    assert marks["centroids_truth"] == marks["offset_loss"] == "CHANGED"
    assert marks["closest_truth_centroid"] == "ADDED"
    assert marks["loss"] == "AFFECTED" and "semantic_loss" not in marks


def test_diff_doc_page_marks_the_changed_terms(tmp_path):
    lines = list(write_diff_doc(str(TOY), "base", "oracle", str(tmp_path)))
    assert lines == [f"wrote {tmp_path}/toy_peaks/diff-base-oracle.html (1 term(s) changed, 0 added, 0 removed, "
                     f"2 computed from them; 0 config value(s) differ.)"]
    page = (tmp_path / "toy_peaks/diff-base-oracle.html").read_text()
    entry = page[page.index('id="term-heat_pred"') - 30:]
    assert entry.startswith('<div class="term wins changed"') or "term wins changed" in entry[:60]
    assert '<span class="mark CHANGED">CHANGED</span>' in entry[:600]
    assert page.count('<span class="mark AFFECTED">AFFECTED</span>') >= 2
    links = parse(page)
    assert [h for h in links.hrefs if h.startswith("#") and h[1:] not in links.ids] == []


def test_output_is_deterministic(tmp_path):
    first = render_pages(str(TOY), [], engine="python")[0]
    second = render_pages(str(TOY), [], engine="python")[0]
    assert first == second and set(first) == {"base.html", "oracle.html", "scaled.html", "strict.html", "index.html"}
    if shutil.which("dot"):
        assert render_pages(str(TOY), ["oracle"], engine="dot")[0] == render_pages(str(TOY), ["oracle"], engine="dot")[0]


def test_super_chain_definitions_are_reached_and_linked():
    pages, _ = render_pages(str(TOY), ["scaled"], engine="python")
    page = pages["scaled.html"]
    links = parse(page)
    assert "def-double-loss-loss" in links.ids and "def-Losses-loss" in links.ids
    assert "code-_loss__double_loss" in links.ids and "code-_loss__Losses" in links.ids
    assert "reached by super() from" in page


def test_cli_doc_and_diff(tmp_path, capsys):
    assert main(["doc", str(TOY), "--variant", "oracle", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"wrote {tmp_path}/toy_peaks/oracle.html", f"wrote {tmp_path}/toy_peaks/index.html"]
    assert main(["diff", str(TOY), "base", "scaled", "--doc", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "toy_peaks/diff-base-scaled.html").exists()
    assert main(["doc", str(TOY), "--variant", "orcale", "-o", str(tmp_path)]) == 1
    assert "unknown variant 'orcale'" in capsys.readouterr().err


def test_unknown_variant_is_a_spec_error(tmp_path):
    with pytest.raises(SpecErrors, match="unknown variant"):
        list(write_diff_doc(str(TOY), "base", "nope", str(tmp_path)))
