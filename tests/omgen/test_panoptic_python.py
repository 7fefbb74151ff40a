"""specs/panoptic.yaml in the Python frontend computes what the YAML spec computes.

The Python spec is `omgen convert specs/panoptic.yaml` (one source for the
math: nobody edits a second copy), written under a module name of its own and
compiled into a temporary folder; every entrypoint of every variant gets the
same random inputs as generated/panoptic (logits, heat maps, offsets, and
panoptic maps made of stuff, thing instances, crowd and void rectangles) and
must return equal tensors. The Python spec, run as plain Python classes with
ModulOM's run-time cache, gives the same values again.
"""
import importlib
import inspect
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
YAML_SPEC = ROOT / "specs" / "panoptic.yaml"


@pytest.fixture(scope="module")
def python_spec(tmp_path_factory) -> Path:
    """specs/panoptic.yaml converted to a Python spec (om panoptic_py), compiled into a temporary folder."""
    from omgen import compile_spec, write
    from omgen.convert import convert

    folder = tmp_path_factory.mktemp("panoptic_py")
    path = folder / "panoptic_py.py"
    list(convert(YAML_SPEC, path))
    text = path.read_text()
    assert 'om = "panoptic"\n' in text
    path.write_text(text.replace('om = "panoptic"\n', 'om = "panoptic_py"\n', 1))
    write(compile_spec(path, out=folder / "generated"))
    return path


def generated_python(python_spec: Path, variant: str):
    from test_python_frontend import import_path  # tests/omgen is on sys.path, as for test_property

    return import_path(python_spec.parent / "generated" / "panoptic_py" / f"{variant}.py",
                       f"_omgen_panoptic_py_{variant}")


def variants() -> list[str]:
    package = importlib.import_module("generated.panoptic")
    return [package.MODULES[v] for v in package.VARIANTS]


def panoptic_map(generator: torch.Generator, n: int, h: int, w: int, config: dict) -> torch.Tensor:
    """Rectangles of stuff, thing instances (ids may repeat across rectangles), crowd and void."""
    k, divisor = config["num_classes"], config["label_divisor"]
    things = [t for t in config["thing_ids"] if 0 <= t < k]
    stuff = [c for c in range(k) if c not in things]
    pan = torch.zeros(n, 1, h, w, dtype=torch.long)

    def pick(values):
        return values[int(torch.randint(0, len(values), (1,), generator=generator))]

    for i in range(n):
        pan[i] = pick(stuff) * divisor
        for _ in range(int(torch.randint(3, 12, (1,), generator=generator))):
            y0 = int(torch.randint(0, h, (1,), generator=generator))
            x0 = int(torch.randint(0, w, (1,), generator=generator))
            y1 = y0 + int(torch.randint(1, h, (1,), generator=generator))
            x1 = x0 + int(torch.randint(1, w, (1,), generator=generator))
            kind = pick(["thing", "thing", "thing", "stuff", "crowd", "void"])
            if kind == "thing" and things:
                value = pick(things) * divisor + int(torch.randint(1, 5, (1,), generator=generator))
            elif kind == "crowd" and things:
                value = pick(things) * divisor
            elif kind == "void":
                value = 255 * divisor + pick([0, 3])
            else:
                value = pick(stuff) * divisor
            pan[i, 0, y0:y1, x0:x1] = value
    return pan


def random_inputs(module, seed: int, n: int = 2, h: int = 24, w: int = 32) -> dict:
    """The network outputs and the panoptic map; any other input (e.g. given targets) by its declared shape."""
    generator = torch.Generator().manual_seed(seed)
    k = int(module.CONFIG["num_classes"])
    values = {
        "semantic_logits": torch.randn(n, k, h, w, generator=generator),
        "center_heatmap": torch.rand(n, 1, h, w, generator=generator) ** 4,
        "offsets": torch.randn(n, 2, h, w, generator=generator) * 4.0,
        "panoptic": panoptic_map(generator, n, h, w, module.CONFIG),
    }
    sizes = {"N": n, "H": h, "W": w}
    for name, decl in module.INPUTS.items():
        if name in values:
            continue
        shape = [int(module.CONFIG[d]) if d in module.CONFIG else sizes.get(d, 0) if not d.isdigit() else int(d)
                 for d in decl["shape"].strip("[]").split(", ")]
        if decl["dtype"] in ("long", "int"):
            labels = torch.randint(0, k, shape, generator=generator)
            values[name] = torch.where(torch.rand(shape, generator=generator) < 0.1,
                                       torch.full_like(labels, int(module.CONFIG["ignore_label"])), labels)
        else:
            values[name] = torch.rand(shape, generator=generator)
    return values


def call(entrypoint, inputs: dict) -> dict:
    return entrypoint(**{p: inputs[p] for p in inspect.signature(entrypoint.forward).parameters})


@pytest.mark.parametrize("variant", variants())
def test_python_spec_outputs_equal_the_yaml_spec(variant, python_spec):
    yaml_module = importlib.import_module(f"generated.panoptic.{variant}")
    py_module = generated_python(python_spec, variant)
    assert py_module.CONFIG == yaml_module.CONFIG
    assert py_module.INPUTS == yaml_module.INPUTS
    assert py_module.MIXINS == yaml_module.MIXINS
    assert list(py_module.ENTRYPOINTS) == list(yaml_module.ENTRYPOINTS)
    for seed, (n, h, w) in enumerate([(2, 24, 32), (1, 17, 13), (3, 9, 40)]):
        inputs = random_inputs(yaml_module, seed, n, h, w)
        for name in yaml_module.ENTRYPOINTS:
            expected = call(yaml_module.ENTRYPOINTS[name](), inputs)
            got = call(py_module.ENTRYPOINTS[name](), inputs)
            assert list(got) == list(expected)
            for key in expected:
                assert got[key].dtype == expected[key].dtype, f"{variant}.{name}: {key}"
                assert torch.equal(got[key], expected[key]), f"{variant}.{name}: {key} differs (seed {seed})"


def test_python_spec_run_as_modulom_classes_gives_the_generated_outputs(tmp_path, python_spec):
    from test_python_frontend import compare_with_modulom  # tests/omgen is on sys.path, as for test_property

    compare_with_modulom(python_spec, tmp_path, lambda module: random_inputs(module, 5))
