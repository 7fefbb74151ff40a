"""`per_image: true` entrypoints: eager and TorchScript run the batch image by image, tracers see one batch."""
from __future__ import annotations

import importlib.util
import inspect
import sys

import pytest
import torch
import yaml
from hypothesis import given, settings, strategies as st

from omgen.compile import compile_spec, load, write
from omgen.convert import convert
from omgen.errors import SpecErrors

SPEC = """\
om: images
inputs:
  logits: {shape: [N, C, H, W], dtype: float, role: prediction}
  grid: {type: Size, shape: [H, W]}
blocks:
  Decode:
    terms:
      labels:
        shape: [N, 1, H, W]
        expr: logits.argmax(1, keepdim=True)
      count:
        shape: [N]
        doc: Pixels of class 0 per image (a reduction over the image, so slices of the batch must agree).
        expr: (labels == 0).flatten(1).sum(1)
      canvas:
        shape: [N, 1, H, W]
        expr: torch.zeros([logits.shape[0], 1, grid[0], grid[1]]) + count.view(-1, 1, 1, 1).float()
compose: [Decode]
entrypoints:
  infer:
    outputs: [labels, count, canvas]
    per_image: true
"""


def _compiled(root, text, name, register=False):
    """Compile a spec text under root and import its base variant (registered in sys.modules if asked)."""
    (root / "pyproject.toml").write_text("")
    spec = root / f"{name}.yaml"
    spec.write_text(text)
    write(compile_spec(spec, out=root / "gen"))
    module_spec = importlib.util.spec_from_file_location(f"{name}_base", root / "gen" / name / "base.py")
    module = importlib.util.module_from_spec(module_spec)
    if register:
        sys.modules[f"{name}_base"] = module
    module_spec.loader.exec_module(module)
    return spec, module


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("images"), SPEC, "images", register=True)


def reference(logits: torch.Tensor) -> dict:
    """Image by image, in plain loops."""
    labels, counts = [], []
    for image in logits:
        label = image.argmax(0, keepdim=True)
        labels.append(label)
        counts.append(int((label == 0).sum()))
    n, _, h, w = logits.shape
    count = torch.tensor(counts, dtype=torch.long)
    return {"labels": torch.stack(labels) if labels else torch.zeros(0, 1, h, w, dtype=torch.long), "count": count,
            "canvas": count.view(-1, 1, 1, 1).float().expand(n, 1, h, w)}


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 99))
def test_image_by_image_equals_the_batch_and_the_reference(images, n, h, w, seed):
    _, module = images
    logits = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))
    infer = module.ENTRYPOINTS["infer"]()
    got, batch, scripted = infer(logits, [h, w]), infer._forward_batch(logits, [h, w]), torch.jit.script(infer)(
        logits, [h, w])
    want = reference(logits)
    for key in want:
        for value in (got[key], batch[key], scripted[key]):
            assert value.dtype == batch[key].dtype and torch.equal(value, want[key].to(value.dtype)), key


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
       seed=st.integers(0, 99))
def test_forward_into_writes_the_same_memory_while_the_sizes_hold(images, sizes, seed):
    """forward_into equals forward (eager and TorchScript); a result of the size, dtype and device held is written
    into the held tensor (same storage), another size gets a new one; the dict it returns goes to the next call."""
    _, module = images
    infer = module.ENTRYPOINTS["infer"]()
    scripted = torch.jit.script(infer)
    generator = torch.Generator().manual_seed(seed)
    for program in (infer, scripted):
        out: dict = {}
        previous = None
        for n, h, w in sizes:
            logits = torch.randn(n, 3, h, w, generator=generator)
            held = {k: v.data_ptr() for k, v in out.items()}
            out = program.forward_into(out, logits, [h, w])
            want = reference(logits)
            assert sorted(out) == sorted(want)
            for key in want:
                assert torch.equal(out[key], want[key].to(out[key].dtype)), key
                if previous == (n, h, w) and n > 0:
                    assert out[key].data_ptr() == held[key], key  # written in place
            previous = (n, h, w)


def test_forward_into_falls_back_to_the_batch_into_the_same_dict(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "images.yaml"
    spec.write_text(SPEC.replace("""compose: [Decode]""", """      head:
        shape: [N, k]
        expr: logits.flatten(1)[:, :int(count.max())]
compose: [Decode]""").replace("outputs: [labels, count, canvas]", "outputs: [labels, count, canvas, head]"))
    write(compile_spec(spec, out=tmp_path / "gen"))
    module_spec = importlib.util.spec_from_file_location("images_into", tmp_path / "gen" / "images" / "base.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    infer = module.ENTRYPOINTS["infer"]()
    logits = torch.zeros(2, 3, 2, 3)
    logits[0, 1] = 1.0
    out = infer.forward_into({}, logits, [2, 3])
    assert all(torch.equal(out[k], v) for k, v in infer._forward_batch(logits, [2, 3]).items())
    assert out["head"].shape == (2, 6)


def test_a_traced_program_takes_the_batch_as_one_graph(images):
    _, module = images
    logits = torch.randn(3, 3, 4, 5)
    infer = module.ENTRYPOINTS["infer"]()
    program = torch.export.export(infer, (logits, [4, 5]))
    assert "_forward_batch" not in str(program.graph)  # one graph, no loop over the batch
    assert all(torch.equal(program.module()(logits, [4, 5])[k], v) for k, v in infer(logits, [4, 5]).items())
    compiled = torch.compile(infer, fullgraph=True, backend="eager")
    assert all(torch.equal(compiled(logits, [4, 5])[k], v) for k, v in infer(logits, [4, 5]).items())


@pytest.mark.parametrize("old, new, message", [
    ("      count:\n        shape: [N]\n", "      count:\n        shape: [1]\n",
     "per_image needs every output to start with N (one slice per image) or a row size such as M"),
    ("      count:\n        shape: [N]\n", "      count:\n", "'count' has shape undeclared"),
    ("  logits: {shape: [N, C, H, W]", "  logits: {shape: [B, C, H, W]", None),  # renamed alike: fine
    ("    per_image: true", "    per_image: yes please", "entrypoint 'infer': per_image is true or false"),
])
def test_per_image_is_checked_at_the_spec_line(tmp_path, old, new, message):
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "images.yaml"
    text = SPEC.replace(old, new)
    if message is None:
        text = text.replace("[N, 1, H, W]", "[B, 1, H, W]").replace("shape: [N]", "shape: [B]")
    spec.write_text(text)
    if message is None:
        compile_spec(spec)
        return
    with pytest.raises(SpecErrors) as info:
        compile_spec(spec)
    assert any(message in str(d) for d in info.value.diagnostics), info.value.diagnostics


def test_per_image_converts_both_ways(images, tmp_path):
    spec, _ = images
    py, back = tmp_path / "images.py", tmp_path / "back.yaml"
    list(convert(spec, py))
    assert '"per_image": True' in py.read_text()
    list(convert(py, back))
    assert load(py).entrypoints[0].per_image and load(back).entrypoints[0].per_image


def test_an_output_whose_size_depends_on_the_image_falls_back_to_the_batch(tmp_path):
    """The oracle centers' case: a slot count from the data. Images of different counts cannot be stacked, so
    the call computes the batch at once; its outputs are the batch's."""
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "images.yaml"
    spec.write_text(SPEC.replace("""compose: [Decode]""", """      head:
        shape: [N, k]
        doc: The first max-count scores of each image (k from the data).
        expr: logits.flatten(1)[:, :int(count.max())]
compose: [Decode]""").replace("outputs: [labels, count, canvas]", "outputs: [labels, count, canvas, head]"))
    write(compile_spec(spec, out=tmp_path / "gen"))
    module_spec = importlib.util.spec_from_file_location("images_head", tmp_path / "gen" / "images" / "base.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    infer = module.ENTRYPOINTS["infer"]()
    logits = torch.zeros(2, 3, 2, 3)
    logits[0, 1] = 1.0  # image 0: no pixel of class 0; image 1: all six
    got, batch = infer(logits, [2, 3]), infer._forward_batch(logits, [2, 3])
    assert got["head"].shape == (2, 6) and all(torch.equal(got[k], batch[k]) for k in batch)
    scripted = torch.jit.script(infer)(logits, [2, 3])
    assert all(torch.equal(scripted[k], batch[k]) for k in batch)


# ----------------------------------------------------------------------------- rows and numbers

OBJECTS = """\
om: objects
inputs:
  labels: {shape: [N, 1, H, W], dtype: int, role: truth}
blocks:
  Objects:
    terms:
      lit:
        shape: [M]
        doc: Flat index of every labelled pixel over the batch (the objects).
        expr: torch.nonzero(labels.reshape(-1) > 0).view(-1)
      object_image:
        shape: [M]
        expr: torch.div(lit, labels.shape[2] * labels.shape[3], rounding_mode="floor")
      object_value:
        shape: [M, 1]
        expr: labels.reshape(-1)[lit].view(-1, 1)
      object_index:
        shape: [N, 1, H, W]
        doc: The object at each pixel (0..M-1 over the batch), -1 where none.
        body: |
          index = torch.full([labels.numel()], -1, dtype=torch.long, device=labels.device)
          index[lit] = torch.arange(lit.shape[0], device=labels.device)
          return index.view(labels.shape)
compose: [Objects]
entrypoints:
  objects:
    outputs: [object_index, object_image, object_value]
    per_image:
      numbers: {object_index: M, object_image: N}
"""


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("objects"), OBJECTS, "objects")


def objects_reference(labels: torch.Tensor) -> dict:
    """Pixel by pixel in raster order over the batch, one counter."""
    n, _, h, w = labels.shape
    index = torch.full((n, 1, h, w), -1, dtype=torch.long)
    images, values = [], []
    for b in range(n):
        for y in range(h):
            for x in range(w):
                if labels[b, 0, y, x] > 0:
                    index[b, 0, y, x] = len(images)
                    images.append(b)
                    values.append([int(labels[b, 0, y, x])])
    return {"object_index": index, "object_image": torch.tensor(images, dtype=torch.long),
            "object_value": torch.tensor(values, dtype=torch.long).view(-1, 1)}


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 4), w=st.integers(1, 4), seed=st.integers(0, 99))
def test_rows_are_concatenated_and_numbers_counted_on_over_the_batch(objects, n, h, w, seed):
    """Image by image, the objects of each image appended and their numbers (object index, image) offset by the
    images before: the batch's own result and the loop reference, eager, TorchScript and forward_into."""
    _, module = objects
    labels = torch.randint(0, 3, (n, 1, h, w), generator=torch.Generator().manual_seed(seed))
    entry = module.ENTRYPOINTS["objects"]()
    scripted = torch.jit.script(entry)
    want = objects_reference(labels)
    results = [entry(labels), entry._forward_batch(labels), scripted(labels), entry.forward_into({}, labels),
               scripted.forward_into(scripted(labels), labels)]
    for got in results:
        assert sorted(got) == sorted(want)
        for key in want:
            assert got[key].dtype == torch.long and torch.equal(got[key], want[key]), key


@pytest.mark.parametrize("old, new, message", [
    ("numbers: {object_index: M, object_image: N}", "numbers: {object_index: K, object_image: N}",
     "per_image numbers 'object_index' by 'K', which is neither the batch size nor the rows of an output"),
    ("numbers: {object_index: M, object_image: N}", "numbers: {object_indx: M}",
     "per_image numbers 'object_indx', which is not one of its outputs"),
    ("numbers: {object_index: M, object_image: N}", "numbers: {object_index: 3}",
     "per_image: numbers maps an output to the size symbol of the rows it numbers, got 'object_index': 3"),
    ("numbers: {object_index: M, object_image: N}", "numbers: {object_index: }",
     "per_image: numbers maps an output to the size symbol of the rows it numbers, got 'object_index': None"),
    ("      numbers: {object_index: M, object_image: N}", "      count: {object_index: M}",
     "unknown key 'count' in entrypoint 'objects': per_image"),
    ("        shape: [M, 1]\n", "", "'object_value' has shape undeclared"),
])
def test_rows_and_numbers_are_checked_at_the_spec_line(tmp_path, old, new, message):
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "objects.yaml"
    assert old in OBJECTS
    spec.write_text(OBJECTS.replace(old, new))
    with pytest.raises(SpecErrors) as info:
        compile_spec(spec)
    assert any(message in str(d) for d in info.value.diagnostics), info.value.diagnostics


def test_numbers_convert_both_ways(objects, tmp_path):
    spec, _ = objects
    py, back = tmp_path / "objects.py", tmp_path / "back.yaml"
    list(convert(spec, py))
    list(convert(py, back))
    for path in (py, back):
        entrypoint = load(path).entrypoints[0]
        assert entrypoint.per_image and entrypoint.numbers == (("object_index", "M"), ("object_image", "N"))


HOSTILE = st.one_of(st.sampled_from(['M', 'N', 'object_index', '"', "'", "\\", "\n", "x\nimport os", "#", "{", "}",
                                     "M; open('PWNED', 'w')", "\u2028", "\x00", "", "_i", "class", "É"]),
                    st.text(max_size=12))


@settings(max_examples=40, deadline=None)
@given(output=HOSTILE, size=st.one_of(HOSTILE, st.none(), st.integers(), st.lists(st.just("M"), max_size=2)))
def test_hostile_numbers_compile_to_identifiers_or_one_line_errors(tmp_path_factory, output, size):
    """Any text as a numbered output or its size: the spec is refused with one-line errors, or it compiled and
    what reached the code is an output name and a size symbol, both plain identifiers."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "pyproject.toml").write_text("")
    spec = root / "objects.yaml"
    data = yaml.safe_load(OBJECTS)
    data["entrypoints"]["objects"]["per_image"] = {"numbers": {output: size}}
    try:
        spec.write_text(yaml.safe_dump(data, allow_unicode=True))
    except UnicodeEncodeError:
        return  # text a file cannot hold (lone surrogates)
    try:
        files = compile_spec(spec, out=root / "gen")
    except SpecErrors as errors:
        assert errors.diagnostics and all("\n" not in str(d) for d in errors.diagnostics)
        return
    assert output in ("object_index", "object_image", "object_value") and size.isidentifier() and size.isascii()
    assert files


BATCH_FORWARD = OBJECTS.replace("      numbers: {object_index: M, object_image: N}\n",
                                "      numbers: {object_index: M, object_image: N}\n      forward: batch\n")


@pytest.fixture(scope="module")
def batch_forward(tmp_path_factory):
    return _compiled(tmp_path_factory.mktemp("batch_forward"), BATCH_FORWARD, "objects")


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 4), h=st.integers(1, 4), w=st.integers(1, 4), seed=st.integers(0, 99))
def test_forward_batch_keeps_forward_on_the_batch_and_forward_into_image_by_image(batch_forward, n, h, w, seed):
    """`forward: batch`: forward() runs the batch at once (no image loop in its code, eager or TorchScript), while
    forward_into still goes image by image into the held tensors; every result equals the loop reference."""
    _, module = batch_forward
    entry = module.ENTRYPOINTS["objects"]()
    source = inspect.getsource(type(entry).forward)
    assert "_image_into" not in source and "self._forward_batch(labels)" in source
    assert "_image_into" in inspect.getsource(type(entry).forward_into)
    labels = torch.randint(0, 3, (n, 1, h, w), generator=torch.Generator().manual_seed(seed))
    scripted = torch.jit.script(entry)
    want = objects_reference(labels)
    held = entry.forward_into({}, labels)
    kept = {k: v.data_ptr() for k, v in held.items() if k == "object_index" and v.numel()}
    results = [entry(labels), scripted(labels), held, entry.forward_into(held, labels),
               scripted.forward_into(scripted(labels), labels)]
    assert all(held[k].data_ptr() == p for k, p in kept.items())  # written where it was
    for got in results:
        assert sorted(got) == sorted(want)
        for key in want:
            assert torch.equal(got[key], want[key]), key


def test_forward_batch_is_checked_and_converts_both_ways(batch_forward, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    bad = tmp_path / "objects.yaml"
    bad.write_text(BATCH_FORWARD.replace("forward: batch", "forward: sometimes"))
    with pytest.raises(SpecErrors) as info:
        compile_spec(bad)
    assert any("entrypoint 'objects': per_image: forward is 'images' (the default) or 'batch', got 'sometimes'"
               in str(d) and "\n" not in str(d) for d in info.value.diagnostics), info.value.diagnostics
    spec, _ = batch_forward
    py, back = tmp_path / "objects.py", tmp_path / "back.yaml"
    list(convert(spec, py))
    list(convert(py, back))
    for path in (spec, py, back):
        entrypoint = load(path).entrypoints[0]
        assert entrypoint.per_image and entrypoint.forward_batch
        assert entrypoint.numbers == (("object_index", "M"), ("object_image", "N"))


@settings(max_examples=30, deadline=None)
@given(forward=st.one_of(HOSTILE, st.none(), st.integers(), st.booleans(), st.lists(st.just("batch"), max_size=2)))
def test_hostile_forward_values_compile_only_as_images_or_batch(tmp_path_factory, forward):
    """Any value of per_image's forward: only 'images' and 'batch' compile; everything else is one one-line
    error at the spec."""
    root = tmp_path_factory.mktemp("hostile_forward")
    (root / "pyproject.toml").write_text("")
    spec = root / "objects.yaml"
    data = yaml.safe_load(OBJECTS)
    data["entrypoints"]["objects"]["per_image"]["forward"] = forward
    try:
        spec.write_text(yaml.safe_dump(data, allow_unicode=True))
    except UnicodeEncodeError:
        return  # text a file cannot hold (lone surrogates)
    try:
        compile_spec(spec, out=root / "gen")
    except SpecErrors as errors:
        assert forward not in ("images", "batch")
        assert errors.diagnostics and all("\n" not in str(d) for d in errors.diagnostics)
        assert any("per_image: forward is 'images' (the default) or 'batch'" in str(d) for d in errors.diagnostics)
        return
    assert forward in ("images", "batch")
