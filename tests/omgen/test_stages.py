"""Each compiler stage on its own: load (positions, includes), bodies (free names), analysis (deps, order)."""
import pytest

from omgen.bodies import read_body
from omgen.compile import build_graph, load
from omgen.errors import SpecErrors
from omgen.model import Code
from omgen.errors import Location

SPEC = """
om: stages
include: [lib.yaml]
config:
  scale: {type: float, default: 2}
  ids: {type: "List[int]", default: [1, 2]}
inputs:
  a: {shape: [N, C], dtype: float}
  b: {shape: [N, C], dtype: float}
blocks:
  Top:
    bases: [Lib]
    terms:
      total:
        math: 'T := \\sum s'
        body: |
          acc = summed * scale
          for i in range(2):
              acc = acc + i
          return acc
compose: [Top]
mixins:
  half:
    terms:
      summed: {expr: 0.5 * super()}
variants: {base: [], half: [half]}
entrypoints:
  out: [total]
"""
LIB = """
blocks:
  Lib:
    terms:
      summed: {expr: twice(a) + b, shape: [N, C]}
      unused: {expr: b}
functions:
  twice:
    args: {x: Tensor}
    returns: Tensor
    expr: x * 2
"""


@pytest.fixture
def spec_path(write_spec):
    write_spec(LIB, "lib.yaml")
    return write_spec(SPEC)


def test_load_keeps_positions_and_merges_includes(spec_path):
    spec = load(spec_path)
    assert [b.name for b in spec.blocks] == ["Top", "half", "Lib"]
    total = spec.block("Top").terms[0]
    assert (total.location.line, total.location.col) == (13, 7)
    assert total.code.origin.line == 16  # first line of the block scalar
    summed = spec.block("Lib").terms[0]
    assert summed.location.file.endswith("lib.yaml") and summed.location.line == 4
    assert spec.config_by_name["scale"].default == 2.0 and isinstance(spec.config_by_name["scale"].default, float)
    assert [s[0].rsplit("/", 1)[-1] for s in spec.sources] == ["spec.yaml", "lib.yaml"]


def test_free_names_locals_and_super():
    code = Code("y = [v * k for v in xs]\nz: int = len(y)\nreturn torch.stack(y).sum(dim=0) + super() * z + F.relu(w).x\n",
                Location("f.yaml", 1, 0))
    body = read_body(code)
    assert [n.value for n in body.free] == ["k", "xs", "int", "len", "torch", "super", "F", "w"]
    assert sorted(n.value for n in body.locals) == ["v", "y", "z"]
    assert len(body.super_calls) == 1 and body.returns


def test_body_error_positions_map_to_spec_lines():
    code = Code.from_expr("a + nope", Location("f.yaml", 7, 15))
    body = read_body(code)
    assert str(body.location(body.free[1])) == "f.yaml:7:19"


def test_dependencies_order_and_super_params(spec_path):
    spec = load(spec_path)
    graph = build_graph(spec, spec.variant("half"))
    assert [t.name for t in graph.terms] == ["summed", "total", "unused"]
    summed = graph.by_name["summed"]
    assert [d.method for d in summed.definitions] == ["summed", "_summed__Lib"]
    assert summed.params == ("a", "b")
    assert graph.dependencies("total") == ("summed",)
    assert graph.needed_for(["total"]) == ("a", "b", "summed", "total")
    assert [t.name for t in graph.unused] == ["unused"]


def test_errors_collected_across_a_stage(write_spec):
    path = write_spec("""
    om: e
    inputs: {x: {}}
    blocks:
      A:
        terms:
          p: {expr: x + q1}
          q: {expr: x + p2}
    compose: [A]
    entrypoints: {o: [p]}
    """)
    with pytest.raises(SpecErrors) as info:
        build_graph(load(path), load(path).variants[0])
    assert len(info.value.diagnostics) == 2
