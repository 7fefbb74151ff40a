"""Size inputs (`type: Size`): a list of ints whose entries are named sizes, checked against the other inputs."""
from __future__ import annotations

import importlib.util
import inspect
import sys
from typing import List

import pytest
import torch
from hypothesis import given, settings, strategies as st

from omgen.compile import compile_spec, load, write
from omgen.convert import convert
from omgen.errors import SpecErrors

SPEC = """\
om: sized
inputs:
  heat: {shape: [N, 1, h, w], dtype: float, role: prediction}
  grid: {type: Size, shape: [h, w], doc: The output grid.}
  points: {shape: [N, 2], dtype: long, role: truth}
blocks:
  Canvas:
    terms:
      canvas_truth:
        doc: One at each point of the grid, drawn without reading the heat map.
        body: |
          out = torch.zeros([points.shape[0], grid[0] * grid[1]], dtype=torch.float32, device=points.device)
          index = (points[:, 0].clamp(0, grid[0] - 1) * grid[1] + points[:, 1].clamp(0, grid[1] - 1)).view(-1, 1)
          return out.scatter(1, index, 1.0).view(points.shape[0], 1, grid[0], grid[1])
      loss:
        expr: (torch.sigmoid(heat) - canvas_truth).abs().mean()
compose: [Canvas]
entrypoints:
  targets: [canvas_truth]
  train: [loss]
"""


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    root = tmp_path_factory.mktemp("sized")
    (root / "pyproject.toml").write_text("")
    spec = root / "sized.yaml"
    spec.write_text(SPEC)
    result = compile_spec(spec, out=root / "gen")
    write(result)
    path = root / "gen" / "sized" / "base.py"
    module_spec = importlib.util.spec_from_file_location("sized_base", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["sized_base"] = module
    module_spec.loader.exec_module(module)
    return spec, module


def reference_canvas(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    out = torch.zeros(points.shape[0], 1, h, w)
    for i, (y, x) in enumerate(points.tolist()):
        out[i, 0, min(max(y, 0), h - 1), min(max(x, 0), w - 1)] = 1.0
    return out


def test_targets_take_the_grid_and_no_tensor_for_it(sized):
    _, module = sized
    assert module.INPUTS["grid"] == {"type": "Size", "shape": "[h, w]", "dtype": "int", "role": "other"}
    targets = module.ENTRYPOINTS["targets"]()
    params = inspect.signature(targets.forward).parameters
    assert list(params) == ["grid", "points"]  # no heat map: the targets read only the grid
    assert params["grid"].annotation == List[int]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), n=st.integers(1, 3), data=st.data())
def test_eager_and_scripted_targets_equal_the_loop_reference(sized, h, w, n, data):
    _, module = sized
    points = torch.tensor(data.draw(st.lists(st.tuples(st.integers(-2, 10), st.integers(-2, 10)), min_size=n,
                                             max_size=n)), dtype=torch.long)
    eager = module.ENTRYPOINTS["targets"]()
    scripted = torch.jit.script(eager)
    want = reference_canvas(points, h, w)
    assert torch.equal(eager(grid=[h, w], points=points)["canvas_truth"], want)
    assert torch.equal(scripted(grid=[h, w], points=points)["canvas_truth"], want)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), gh=st.integers(0, 7), gw=st.integers(0, 7))
def test_the_grid_is_checked_against_the_heat_map(sized, h, w, gh, gw):
    _, module = sized
    train = module.ENTRYPOINTS["train"]()
    args = dict(heat=torch.zeros(2, 1, h, w), points=torch.zeros(2, 2, dtype=torch.long))
    if (gh, gw) == (h, w):
        assert torch.isfinite(train(grid=[gh, gw], **args)["loss"])
        return
    earlier = "h" if gh != h else "w"
    with pytest.raises(ValueError, match=rf"^input 'grid': expected sizes \[h, w\], got \[{gh}, {gw}\] "
                                         rf"\({earlier} = {h if earlier == 'h' else w} in an earlier input\)$"):
        train(grid=[gh, gw], **args)


def test_a_grid_of_the_wrong_count_is_one_line(sized):
    _, module = sized
    with pytest.raises(ValueError, match=r"^input 'grid': expected sizes \[h, w\], got \[3\]$"):
        module.ENTRYPOINTS["targets"]()(grid=[3], points=torch.zeros(1, 2, dtype=torch.long))


def test_targets_with_a_grid_export(sized):
    _, module = sized
    targets = module.ENTRYPOINTS["targets"]()
    points = torch.tensor([[1, 2], [0, 0]])
    program = torch.export.export(targets, (), {"grid": [4, 5], "points": points})
    assert torch.equal(program.module()(grid=[4, 5], points=points)["canvas_truth"], reference_canvas(points, 4, 5))


@pytest.mark.parametrize("line, message", [
    ("  grid: {type: Size, doc: The output grid.}", "size input 'grid' needs a shape: the sizes it carries"),
    ("  grid: {type: Size, shape: [h, w], dtype: float}", "size input 'grid' holds ints, not float"),
    ("  grid: {type: Size, shape: [h, w], role: targte}", "input 'grid': unknown role 'targte'"),
])
def test_bad_size_inputs_are_errors_at_their_line(tmp_path, line, message):
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("  grid: {type: Size, shape: [h, w], doc: The output grid.}", line))
    with pytest.raises(SpecErrors) as info:
        load(spec)
    assert any(message in str(d) and ":4:" in str(d) for d in info.value.diagnostics), info.value.diagnostics


def test_a_size_input_converts_to_python_and_back(sized, tmp_path):
    spec, _ = sized
    py, back = tmp_path / "sized.py", tmp_path / "back.yaml"
    list(convert(spec, py))
    assert '"grid": {"type": "Size", "shape": ["h", "w"]' in py.read_text()
    list(convert(py, back))
    for other in (py, back):
        assert load(other).inputs_by_name["grid"].type == "Size"
        assert load(other).inputs_by_name["grid"].shape == ("h", "w")


def test_a_tensor_for_the_grid_is_one_line_in_eager_mode(sized):
    _, module = sized
    with pytest.raises(ValueError, match=r"^input 'grid': expected a list of sizes \[h, w\], got another type$"):
        module.ENTRYPOINTS["targets"]()(grid=torch.zeros(1, 1, 4, 4), points=torch.zeros(1, 2, dtype=torch.long))
