"""`into: true` terms: a per_image entrypoint hands each image's slice of the results it holds to the term, which
writes its result there (no copy into the batch's results, no fresh memory under forward_into)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from omgen.compile import compile_spec, load, write
from omgen.convert import convert
from omgen.errors import SpecErrors

LIBRARY = Path(__file__).resolve().parents[2] / "specs" / "common"
SPEC = """\
om: held
include: [common/results.yaml]
inputs:
  labels: {shape: [N, 1, H, W], dtype: int, role: truth}
blocks:
  Objects:
    terms:
      lit:
        shape: [M]
        expr: torch.nonzero(labels.reshape(-1) > 0).view(-1)
      object_image:
        shape: [M]
        expr: torch.div(lit, labels.shape[2] * labels.shape[3], rounding_mode="floor")
      object_index:
        shape: [N, 1, H, W]
        doc: The object at each pixel (0..M-1 over the batch), -1 where none.
        into: true
        body: |
          index = held_or_empty(into, list(labels.shape), torch.long, labels.device).fill_(-1)
          index.view(-1)[lit] = torch.arange(lit.shape[0], device=labels.device)
          return index
      doubled:
        shape: [N, 1, H, W]
        into: true
        expr: torch.mul(labels, 2, out=held_or_empty(into, list(labels.shape), labels.dtype, labels.device))
      positive:
        shape: [N, 1, H, W]
        expr: labels > 0
compose: [Objects]
entrypoints:
  objects:
    outputs: [object_index, doubled, positive, object_image]
    per_image:
      numbers: {object_index: M, object_image: N}
"""


#: object_index numbering its own values: from number_from, the objects of the images before (no pass afterwards)
SELF_NUMBERED = SPEC.replace("index.view(-1)[lit] = torch.arange(lit.shape[0], device=labels.device)",
                             "index.view(-1)[lit] = torch.arange(lit.shape[0], device=labels.device) + number_from")


def _write_spec(root, text):
    (root / "pyproject.toml").write_text("")
    (root / "common").mkdir(exist_ok=True)
    shutil.copy(LIBRARY / "results.yaml", root / "common" / "results.yaml")
    spec = root / "held.yaml"
    spec.write_text(text)
    return spec


def _compiled(root, text, name):
    spec = _write_spec(root, text)
    write(compile_spec(spec, out=root / "gen"))
    module_spec = importlib.util.spec_from_file_location(name, root / "gen" / "held" / "base.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return spec, module


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("held"), SPEC, "held_base")


@pytest.fixture(scope="module")
def self_numbered(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("self_numbered"), SELF_NUMBERED, "held_self_numbered")


def reference(labels: torch.Tensor) -> dict:
    """Pixel by pixel in raster order over the batch, one counter."""
    n, _, h, w = labels.shape
    index = torch.full((n, 1, h, w), -1, dtype=torch.long)
    images = []
    for b in range(n):
        for y in range(h):
            for x in range(w):
                if labels[b, 0, y, x] > 0:
                    index[b, 0, y, x] = len(images)
                    images.append(b)
    return {"object_index": index, "doubled": labels * 2, "positive": labels > 0,
            "object_image": torch.tensor(images, dtype=torch.long)}


def _equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
       seed=st.integers(0, 99), numbered_by_its_term=st.booleans())
def test_into_terms_write_their_results_into_the_held_tensors(held, self_numbered, sizes, seed,
                                                               numbered_by_its_term):
    """forward, forward_into (eager and TorchScript) equal the loop reference, numbers counted on over the batch
    (by the entrypoint over the held slice, or by the term from number_from); while the sizes hold, the results
    stay in the held tensors' memory."""
    _, module = self_numbered if numbered_by_its_term else held
    entry = module.ENTRYPOINTS["objects"]()
    scripted = torch.jit.script(entry)
    generator = torch.Generator().manual_seed(seed)
    for program in (entry, scripted):
        out: dict = {}
        previous = None
        for n, h, w in sizes:
            labels = torch.randint(0, 3, (n, 1, h, w), generator=generator)
            kept = {k: v.data_ptr() for k, v in out.items() if v.numel() and k != "object_image"}
            out = program.forward_into(out, labels)
            want = reference(labels)
            _equal(out, want)
            _equal(program(labels), want)
            if previous == (n, h, w):
                assert all(out[k].data_ptr() == p for k, p in kept.items())
            previous = (n, h, w)


def test_the_term_returns_the_slice_it_is_handed_and_a_new_tensor_where_that_cannot_take_it(held):
    """What the generated code relies on to skip the copy: the result is the held slice itself (same storage,
    offset, sizes), for the terms that declare into; a slice of another dtype, not contiguous, or needing a
    gradient gets a new tensor, and the results stay right."""
    _, module = held
    entry = module.ENTRYPOINTS["objects"]()
    labels = torch.randint(0, 3, (3, 1, 4, 5), generator=torch.Generator().manual_seed(1))
    held_out = {k: torch.empty_like(v) for k, v in entry(labels).items()}
    image = labels[1:2]
    slots = {k: held_out[k][1:2] for k in ("object_index", "doubled")}
    got = entry._forward_batch(image, dict(slots))
    assert got["object_index"].is_set_to(slots["object_index"]) and got["doubled"].is_set_to(slots["doubled"])
    _equal(got, reference(image))
    for bad in (torch.empty(1, 1, 4, 5, dtype=torch.int32), torch.empty(1, 1, 5, 4).transpose(2, 3).long(),
                torch.empty(1, 1, 4, 5, requires_grad=True), torch.empty(1, 1, 4, 4, dtype=torch.long)):
        got = entry._forward_batch(image, {"doubled": bad, "object_index": bad})
        assert not got["doubled"].is_set_to(bad) and not got["object_index"].is_set_to(bad)
        _equal(got, reference(image))
    mismatched = {"doubled": torch.zeros(3, 1, 4, 5, dtype=torch.int32), "object_index": torch.zeros(2, 1, 4, 5)}
    _equal(entry.forward_into(mismatched, labels), reference(labels))  # replaced where they do not fit
    assert mismatched["doubled"].dtype == torch.long and mismatched["object_index"].shape == (3, 1, 4, 5)


def test_a_term_that_reads_number_from_is_not_numbered_again(held, self_numbered):
    """The entrypoint numbers object_index over the held slice unless its term reads number_from; then it passes
    the rows before the image and leaves the values as they are (a second numbering would count them twice)."""
    import inspect

    renumbered = inspect.getsource(type(held[1].ENTRYPOINTS["objects"]())._image_into)
    itself = inspect.getsource(type(self_numbered[1].ENTRYPOINTS["objects"]())._image_into)
    assert "_numbered_in_place(" in renumbered and "_numbered_in_place(" not in itself
    assert '_numbered(_image["object_index"]' not in itself and "_forward_batch(labels, _into, _rows_M)" in itself
    entry = self_numbered[1].ENTRYPOINTS["objects"]()
    labels = torch.ones(1, 1, 2, 2, dtype=torch.long)
    assert entry.object_index(labels, entry.lit(labels), number_from=5).flatten().tolist() == [5, 6, 7, 8]


def test_a_traced_program_gets_no_held_tensor_and_forward_into_traces(held):
    _, module = held
    entry = module.ENTRYPOINTS["objects"]()
    labels = torch.randint(0, 3, (2, 1, 3, 4), generator=torch.Generator().manual_seed(2))
    compiled = torch.compile(entry, fullgraph=True, backend="eager")
    _equal(compiled(labels), reference(labels))
    into = torch.compile(entry.forward_into, fullgraph=True, backend="eager")
    _equal(into({k: v.clone() for k, v in entry(labels).items()}, labels), reference(labels))


ALIASED = SPEC.replace("""      positive:
        shape: [N, 1, H, W]
        expr: labels > 0""", """      positive:
        shape: [N, 1, H, W]
        expr: labels > 0
      object_flat:
        shape: [N, HW]
        doc: A view of object_index, numbered too.
        expr: object_index.view(object_index.shape[0], -1)""").replace(
    "outputs: [object_index, doubled, positive, object_image]",
    "outputs: [object_index, doubled, positive, object_image, object_flat]").replace(
    "numbers: {object_index: M, object_image: N}", "numbers: {object_index: M, object_image: N, object_flat: M}")


@pytest.mark.parametrize("text", [ALIASED, ALIASED.replace("index.view(-1)[lit] = torch.arange(lit.shape[0], "
                                                           "device=labels.device)", "index.view(-1)[lit] = "
                                                           "torch.arange(lit.shape[0], device=labels.device) + "
                                                           "number_from")])
def test_a_numbered_output_that_other_terms_read_is_numbered_once(tmp_path, text):
    """object_flat views object_index and both are numbered: object_index then gets neither its held slice nor
    number_from (numbered by a copy, as without into), so each is numbered once, eager and TorchScript."""
    _, module = _compiled(tmp_path, text, f"held_aliased_{'self' if 'number_from' in text else 'plain'}")
    entry = module.ENTRYPOINTS["objects"]()
    labels = torch.ones(3, 1, 2, 2, dtype=torch.long)
    want = entry._forward_batch(labels, {})  # the batch at once: numbered over the batch by construction
    assert want["object_flat"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    for program in (entry, torch.jit.script(entry)):
        held = program.forward_into({}, labels)
        for got in (program(labels), dict(held), program.forward_into(held, labels)):
            _equal(got, want)


@pytest.mark.parametrize("old, new, message", [
    ("        into: true\n        expr: torch.mul", "        expr: torch.mul",
     "term 'doubled' reads 'into' but does not declare `into: true`"),
    ("      positive:\n        shape: [N, 1, H, W]\n", "      positive:\n        shape: [N, 1, H, W]\n        into: true\n",
     None),  # declared and not read: allowed (the term makes its own result)
    ("        into: true\n        body: |\n          index", "        into: maybe\n        body: |\n          index",
     "term 'object_index': 'into' is true or false, got 'maybe'"),
    ("      lit:\n        shape: [M]\n", "      lit:\n        shape: [M]\n        type: \"Tuple[Tensor, Tensor]\"\n"
     "        into: true\n", "term 'lit' declares `into: true` but is Tuple[Tensor, Tensor]"),
    ("      positive:\n", "      into:\n        expr: labels\n      positive:\n",
     "term 'into' shadows 'into', which the body of an `into: true` term reads"),
    ("        expr: labels > 0", "        expr: labels > number_from",
     "term 'positive' reads 'number_from' but does not declare `into: true`"),
    ("  labels: {", "  number_from: {shape: [N], role: truth}\n  labels: {",
     "input 'number_from' shadows 'number_from', which the body of an `into: true` term reads"),
    ("device=labels.device)\n          return index", "device=labels.device) + number_from\n          return index",
     None),  # numbered by the entrypoint: fine
    ("      numbers: {object_index: M, object_image: N}", "      numbers: {object_image: N}",
     None),  # object_index no longer numbered, and it does not read number_from: fine
])
def test_into_is_checked_at_the_spec_line(tmp_path, old, new, message):
    assert old in SPEC
    if message is None:
        spec = _write_spec(tmp_path, SPEC.replace(old, new, 1))
        compile_spec(spec)
        return
    _check_error(tmp_path, SPEC.replace(old, new, 1), message)


def test_a_term_that_numbers_itself_must_be_numbered(tmp_path):
    _check_error(tmp_path, SELF_NUMBERED.replace("      numbers: {object_index: M, object_image: N}",
                                                 "      numbers: {object_image: N}"),
                 "entrypoint 'objects': 'object_index' reads 'number_from', but per_image does not number it")


def _check_error(tmp_path, text, message):
    spec = _write_spec(tmp_path, text)
    with pytest.raises(SpecErrors) as info:
        compile_spec(spec)
    found = [d for d in info.value.diagnostics if message in str(d)]
    assert found and all("\n" not in str(d) and d.location.file.endswith("held.yaml") for d in found), \
        info.value.diagnostics


def test_into_converts_both_ways_and_a_python_spec_reads_self_into(self_numbered, tmp_path):
    spec, module = self_numbered
    _write_spec(tmp_path, SELF_NUMBERED)
    py, back = tmp_path / "held.py", tmp_path / "back.yaml"
    list(convert(spec, py))
    text = py.read_text()
    assert "into=True" in text and "held_or_empty(self.into," in text and "+ self.number_from" in text
    list(convert(py, back))
    for path in (spec, py, back):
        terms = {t.name: t for b in load(path).blocks for t in b.terms}
        assert terms["object_index"].writes_into and terms["doubled"].writes_into
        assert not terms["positive"].writes_into
    write(compile_spec(py, out=tmp_path / "gen"))
    module_spec = importlib.util.spec_from_file_location("held_py_base", tmp_path / "gen" / "held" / "base.py")
    from_python = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(from_python)
    labels = torch.randint(0, 3, (2, 1, 3, 4), generator=torch.Generator().manual_seed(3))
    entry = from_python.ENTRYPOINTS["objects"]()
    slot = torch.empty(1, 1, 3, 4, dtype=torch.long)
    assert entry._forward_batch(labels[:1], {"doubled": slot}, 0)["doubled"].is_set_to(slot)
    _equal(entry.forward_into({}, labels), reference(labels))
    assert entry.object_index(labels[:1], entry.lit(labels[:1]), number_from=3).max() == 3 + int(
        (labels[:1] > 0).sum()) - 1  # the Python spec's self.number_from is the generated parameter
    bad = tmp_path / "bad.py"
    bad.write_text(text.replace("into=True", "into=False", 1))
    with pytest.raises(SpecErrors) as info:
        compile_spec(bad)
    assert any("self.into is read only by a term declared @term(into=True)" in str(d) for d in
               info.value.diagnostics), info.value.diagnostics
    bare = tmp_path / "bare.py"  # the Python frontend reads it through self, as any value of the spec
    bare.write_text(text.replace("held_or_empty(self.into,", "held_or_empty(into,", 1))
    with pytest.raises(SpecErrors) as info:
        compile_spec(bare)
    assert any("bare name 'into': a Python spec reads it as self.into" in str(d) and "\n" not in str(d)
               for d in info.value.diagnostics), info.value.diagnostics


@settings(max_examples=30, deadline=None)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                       st.lists(st.booleans(), max_size=2), st.dictionaries(st.text(max_size=3), st.booleans(),
                                                                            max_size=1)))
def test_any_value_of_into_compiles_as_a_flag_or_is_one_line_error(tmp_path_factory, value):
    """`into:` takes true or false; any other YAML value is one one-line error at the spec, nothing written."""
    import yaml

    root = tmp_path_factory.mktemp("hostile_into")
    data = yaml.safe_load(SPEC)
    data["blocks"]["Objects"]["terms"]["positive"]["into"] = value
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except UnicodeEncodeError:
        return
    spec = _write_spec(root, text)
    try:
        compile_spec(spec, out=root / "gen")
    except SpecErrors as exc:
        assert not isinstance(value, bool)
        assert all("\n" not in str(d) for d in exc.diagnostics)
        assert any("term 'positive': 'into' is true or false" in str(d) for d in exc.diagnostics), exc.diagnostics
        assert not (root / "gen").exists()
        return
    assert isinstance(value, bool)


def test_a_python_spec_s_into_is_a_literal_flag(held, tmp_path):
    spec, _ = held
    _write_spec(tmp_path, SPEC)
    py = tmp_path / "held.py"
    list(convert(spec, py))
    bad = tmp_path / "bad.py"
    bad.write_text(py.read_text().replace("into=True", "into='yes'", 1))
    with pytest.raises(SpecErrors) as info:
        compile_spec(bad)
    assert any("into= is True or False, got 'yes'" in str(d) and "\n" not in str(d) for d in info.value.diagnostics), \
        info.value.diagnostics
