"""Terms that return several values (`outputs:`): each named part is a term, in both frontends, with errors at
the spec line; the generated code is what the spelled-out projection terms gave."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from omgen import compile_spec, load
from omgen.convert import convert
from omgen.errors import SpecErrors

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "specs" / "examples" / "toy_peaks.yaml"
PEAKS = """      peaks:
        shape: [N, 1, H, W]
        body: |
          pooled = max_pool_same(heat_pred, nms_kernel)
          return (heat_pred == pooled) & (heat_pred > threshold)
"""


def _toy(tmp_path: Path, replacement: str, name: str = "toy.yaml") -> Path:
    text = TOY.read_text()
    assert PEAKS in text
    path = tmp_path / name
    path.write_text(text.replace(PEAKS, textwrap.indent(textwrap.dedent(replacement), "      ")))
    return path


TUPLE_TERM = """\
peak_table:
  type: "Tuple[Tensor, Tensor]"
  outputs:
    peaks: {shape: [N, 1, H, W], doc: Local maxima above the threshold.}
    window_max: {probe: true}
  body: |
    pooled = max_pool_same(heat_pred, nms_kernel)
    return (heat_pred == pooled) & (heat_pred > threshold), pooled
"""
SPELLED_OUT = """\
peak_table:
  type: "Tuple[Tensor, Tensor]"
  body: |
    pooled = max_pool_same(heat_pred, nms_kernel)
    return (heat_pred == pooled) & (heat_pred > threshold), pooled
peaks:
  shape: [N, 1, H, W]
  doc: Local maxima above the threshold.
  expr: peak_table[0]
window_max:
  probe: true
  expr: peak_table[1]
"""


def _code(result) -> str:
    """The generated base module without provenance (spec file and line)."""
    source = next(f.source for f in result.files if f.path.name == "base.py")
    return "\n".join(line for line in source.splitlines() if ".yaml" not in line and ".py" not in line)


def test_parts_are_terms_and_generate_what_the_projection_terms_did(tmp_path):
    parts = compile_spec(_toy(tmp_path, TUPLE_TERM, "a.yaml"), out=tmp_path / "a")
    spelled = compile_spec(_toy(tmp_path, SPELLED_OUT, "b.yaml"), out=tmp_path / "b")
    assert _code(parts) == _code(spelled)
    assert parts.warnings == ()  # window_max is a probe, peaks an output of infer
    graph = parts.graphs[0]
    assert graph.dependencies("peaks") == ("peak_table",)
    assert graph.by_name["peaks"].term.shape == ("N", 1, "H", "W")


def test_parts_convert_to_python_and_back(tmp_path):
    yaml_spec = _toy(tmp_path, TUPLE_TERM)
    py = tmp_path / "toy.py"
    list(convert(yaml_spec, py))
    assert "@term(outputs=" in py.read_text()
    back = tmp_path / "back.yaml"
    list(convert(py, back))
    assert "outputs: {peaks:" in back.read_text()
    reference = _code(compile_spec(yaml_spec, out=tmp_path / "r"))
    assert _code(compile_spec(py, out=tmp_path / "p")) == reference
    assert _code(compile_spec(back, out=tmp_path / "y")) == reference
    assert [t.name for b in load(py).blocks for t in b.terms] == [t.name for b in load(yaml_spec).blocks for t in b.terms]


def test_a_mixin_may_override_a_part_or_the_whole(tmp_path):
    spec = _toy(tmp_path, TUPLE_TERM)
    text = spec.read_text().replace("""  oracle-heat:
    doc: Replace the predicted heat map by the ground truth.
    terms:
      heat_pred: {expr: points}
""", """  oracle-heat:
    doc: Replace the predicted heat map by the ground truth.
    terms:
      heat_pred: {expr: points}
      peaks: {expr: points > 0.5}
""")
    spec.write_text(text)
    result = compile_spec(spec, out=tmp_path / "o")
    oracle = next(g for g in result.graphs if g.om.variant.name == "oracle")
    assert oracle.dependencies("peaks") == ("points",)


@pytest.mark.parametrize("replacement, message", [
    (TUPLE_TERM.replace('"Tuple[Tensor, Tensor]"', "Tensor"), "its type is Tensor, not a Tuple"),
    (TUPLE_TERM.replace('"Tuple[Tensor, Tensor]"', '"Tuple[Tensor, Tensor, Tensor]"'),
     "names 2 outputs for its 3-tuple type"),
    (TUPLE_TERM.replace("window_max: {probe: true}", "peak_table: {}"), "has the term's own name"),
    (TUPLE_TERM.replace("window_max: {probe: true}", "window_max: {colour: red}"), "unknown key 'colour'"),
    (TUPLE_TERM.replace("window_max: {probe: true}", "window_max: {type: int}"),
     "has type int, but element 1 of Tuple[Tensor, Tensor] is Tensor"),
    (TUPLE_TERM.replace("window_max: {probe: true}", "heat_pred: {}"), "heat_pred"),
    (TUPLE_TERM.replace("window_max: {probe: true}", "torch: {}"), "shadows the global 'torch'"),
    (TUPLE_TERM.replace("    peaks: {shape: [N, 1, H, W], doc: Local maxima above the threshold.}\n"
                        "    window_max: {probe: true}\n", "    - 3\n"), "must be a name"),
])
def test_bad_outputs_are_one_error_at_the_spec_line(tmp_path, replacement, message):
    spec = _toy(tmp_path, replacement)
    with pytest.raises(SpecErrors) as info:
        compile_spec(spec, out=tmp_path / "x")
    text = "\n".join(str(d) for d in info.value.diagnostics)
    assert message in text and str(spec.name) in text


def test_the_python_frontend_reports_bad_outputs_too(tmp_path):
    yaml_spec = _toy(tmp_path, TUPLE_TERM)
    py = tmp_path / "toy.py"
    list(convert(yaml_spec, py))
    text = py.read_text()
    bad = tmp_path / "bad.py"
    bad.write_text(text.replace('"window_max"', '"torch"', 1))
    with pytest.raises(SpecErrors) as info:
        load(bad)
    assert "term 'torch' shadows the global 'torch' that bodies use" in str(info.value.diagnostics[0])  # as in YAML
    call = "F.mse_loss(self.heat_pred(), self.points)"
    assert call in text
    bad.write_text(text.replace(call, "F.mse_loss(self.window_max(2), self.points)"))
    with pytest.raises(SpecErrors, match="is an output of term 'peak_table' and takes no arguments"):
        load(bad)


def test_shipped_specs_have_no_projection_terms():
    import re

    for spec in sorted((ROOT / "specs").rglob("*.yaml")):
        assert not re.search(r"expr: [a-z_]+\[[0-9]+\]\s*$", spec.read_text(), re.M), spec


def test_the_vote_is_written_once_in_the_panoptic_spec():
    text = (ROOT / "specs" / "panoptic.yaml").read_text()
    assert text.count("flat.index_select(0, b * (2 * hw) + hw + r)") == 1  # in the function pixel_votes
    assert text.count("pixel_votes(") == 4
