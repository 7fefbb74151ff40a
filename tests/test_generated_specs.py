"""Every spec in specs/: generated/ is fresh, and every variant's modules script with outputs equal to eager.

Inputs are random tensors of the declared shapes and dtypes (integer inputs
are drawn in [0, 5000), a valid panoptic-id range); spec-specific tests check
values against references.
"""
import difflib
import importlib
from pathlib import Path

import pytest
import torch

from omgen import compile_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "specs").rglob("*") if p.suffix in (".yaml", ".py") and "common" not in p.parts)


def spec_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module", params=SPECS, ids=spec_id)
def compiled(request):
    return compile_spec(request.param)


def test_specs_exist():
    assert any(p.name == "toy_peaks.yaml" for p in SPECS)


def test_generated_is_fresh(compiled):
    for generated in compiled.files:
        current = generated.path.read_text() if generated.path.exists() else ""
        if current != generated.source:
            diff = "".join(difflib.unified_diff(current.splitlines(True), generated.source.splitlines(True),
                                                "on disk", "from spec", n=2))
            pytest.fail(f"{generated.path} is stale; run `omgen compile {compiled.spec.path}`\n{diff[:3000]}")


def test_generated_lines_fit_the_line(compiled):
    """Every generated line within LINE columns (ruff lays out the code, the emitter wraps text)."""
    from omgen.literals import LINE

    long = [f"{g.path.name}:{i}: {len(line)} columns" for g in compiled.files
            for i, line in enumerate(g.source.splitlines(), 1) if len(line) > LINE]
    assert not long, long[:10]


# Shape names a spec defines in words (pose.yaml: "J2 = 2 J channels"); the generated module cannot know them.
DERIVED_SIZES = {"J2": lambda config: 2 * int(config["num_joints"])}


def random_inputs(module, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    sizes = {"N": 2, "H": 24, "W": 32}
    sizes.update({name: size(module.CONFIG) for name, size in DERIVED_SIZES.items() if "num_joints" in module.CONFIG})
    values = {}
    for name, decl in module.INPUTS.items():
        if decl["shape"] == "any":
            shape = [2, 1, 24, 32]
        else:
            shape = []
            for dim in decl["shape"].strip("[]").split(", "):
                size = 1
                for factor in dim.split(" * "):  # a product such as 2 * num_joints
                    if factor.isdigit():
                        size *= int(factor)
                    elif factor in module.CONFIG:
                        size *= int(module.CONFIG[factor])
                    else:
                        size *= sizes.setdefault(factor, 3)
                shape.append(size)
        dtype = decl["dtype"]
        if decl.get("type") == "Size":  # a size input: the sizes it names, as the other inputs bind them
            values[name] = shape
        elif dtype in ("long", "int"):
            values[name] = torch.randint(0, 5000, shape, generator=generator)
        elif dtype == "uint8":
            values[name] = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        elif dtype == "bool":
            values[name] = torch.rand(shape, generator=generator) > 0.5
        else:
            values[name] = torch.randn(shape, generator=generator)
    return values


def _code_key(graph, names) -> tuple:
    """What the generated code of these terms depends on: each term's defining spec line (config values are
    constructor arguments); variants with the same key have the same code for them."""
    return tuple((n, str(graph.by_name[n].term.winner.location)) for n in sorted(names) if n in graph.by_name)


def test_every_variant_scripts_and_matches_eager(compiled):
    """Every entrypoint and Session scripts and equals eager, once per distinct code (scripting takes ~1 s)."""
    package = compiled.files[0].path.parent.name
    seen = set()
    for graph in compiled.graphs:
        module = importlib.import_module(f"generated.{package}.{graph.om.variant.module_name}")
        inputs = random_inputs(module)
        for name, cls in module.ENTRYPOINTS.items():
            entrypoint = next(e for e in graph.spec.entrypoints if e.name == name)
            key = (name, _code_key(graph, graph.needed_for(entrypoint.outputs)))
            if key in seen:
                continue
            seen.add(key)
            eager = cls()
            scripted = torch.jit.script(eager)
            params = [p for p in scripted.forward.schema.arguments if p.name != "self"]
            args = [inputs[p.name] for p in params]
            try:
                expected = eager(*args)
            except (IndexError, RuntimeError, ValueError) as error:
                # random values can be out of an input's domain (e.g. class ids of a given target map):
                # then the scripted module must fail too; spec tests check values on valid inputs
                with pytest.raises(Exception):
                    scripted(*args)
                print(f"{graph.om.variant.name}.{name}: eager and scripted both reject random inputs ({error})")
                continue
            got = scripted(*args)
            assert expected.keys() == got.keys()
            for key in expected:
                assert torch.equal(expected[key], got[key]), f"{graph.om.variant.name}.{name}: {key} differs"
        # each term once per distinct code (a scripted method's first calls are profiled and optimised: ~50 ms)
        fresh = []
        for term in graph.terms:
            key = ("term", term.name, _code_key(graph, graph.needed_for([term.name])))
            if term.term.type == "Tensor" and key not in seen:
                seen.add(key)
                fresh.append(term)
        if not fresh:
            continue
        # the Session (an inspection tool, not deployed) runs unoptimised: the profiling executor's passes over
        # each method's inlined term tree cost 1-4 s a variant; the entrypoints above run optimised
        with torch.jit.optimized_execution(False):
            session = torch.jit.script(module.Session())
            session.bind(**inputs)
            eager_session = module.Session()
            eager_session.bind(**inputs)
            for term in fresh:
                try:
                    expected_term = getattr(eager_session, term.name)()
                except (IndexError, RuntimeError, ValueError):
                    with pytest.raises(Exception):
                        getattr(session, term.name)()
                    continue
                assert torch.equal(getattr(session, term.name)(), expected_term)


# (om, entrypoint) → why torch.export cannot take it; docs/torch-export.md says the same.
EXPORT_BLOCKED: dict = {}
# (om, entrypoint) → why the exported program equals eager only up to rounding (a static path of other order)
EXPORT_CLOSE = {
    ("panoptic", "train"): "hard pixel mining: eager takes a top-k of data-dependent size, export a masked full sort",
}
ENTRYPOINTS = [(spec, name) for spec in SPECS for name in compile_spec(spec).spec.entrypoints]


@pytest.mark.parametrize("spec_path,entrypoint", [(s, e.name) for s, e in ENTRYPOINTS],
                         ids=[f"{spec_id(s)}:{e.name}" for s, e in ENTRYPOINTS])
def test_entrypoint_exports(spec_path, entrypoint):
    """torch.export of the base variant with the example shapes; outputs equal to eager."""
    import inspect

    spec = compile_spec(spec_path, variants=[]).spec
    module = importlib.import_module(f"generated.{spec.om}.{spec.variants[0].module_name}")
    eager = module.ENTRYPOINTS[entrypoint]()
    inputs = random_inputs(module, seed=1)
    args = tuple(inputs[p] for p in inspect.signature(eager.forward).parameters)
    if (spec.om, entrypoint) in EXPORT_BLOCKED:
        with pytest.raises(Exception):
            torch.export.export(eager, args)
        return
    program = torch.export.export(eager, args)
    expected, got = eager(*args), program.module()(*args)
    for key in expected:
        if (spec.om, entrypoint) in EXPORT_CLOSE:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=f"{entrypoint}: {key}")
        else:
            assert torch.equal(expected[key], got[key]), f"{entrypoint}: {key} differs after export"


def _fullgraph_cases() -> list:
    """Every entrypoint of every deployable variant (its infer reads no ground truth), once per distinct code:
    variants whose entrypoint needs the same terms, defined by the same lines, trace the same graph."""
    cases, seen = [], set()
    for spec_path in SPECS:
        result = compile_spec(spec_path)
        for graph in result.graphs:
            inputs = graph.spec.inputs_by_name
            infer = next((e for e in graph.spec.entrypoints if e.name == "infer"), None)
            if infer is not None and any(inputs[n].role == "truth" for n in graph.needed_for(infer.outputs)
                                         if n in inputs):
                continue  # an oracle variant: not deployable
            for entrypoint in graph.spec.entrypoints:
                needed = graph.needed_for(entrypoint.outputs)
                key = (graph.spec.om, entrypoint.name, _code_key(graph, needed))
                if key not in seen:
                    seen.add(key)
                    cases.append((graph.spec.om, graph.om.variant.module_name, entrypoint.name))
    return cases


FULLGRAPH = _fullgraph_cases()


@pytest.mark.parametrize("om,variant,entrypoint", FULLGRAPH, ids=[f"{o}.{v}:{e}" for o, v, e in FULLGRAPH])
def test_deployable_entrypoints_trace_without_a_graph_break(om, variant, entrypoint):
    """torch.compile(fullgraph=True) traces the entrypoint as one graph (dynamo, eager backend: no C++ build on
    the CPU); a graph break is an error. The fused GPU path (bench/bench_gpu.py) relies on this."""
    import inspect

    module = importlib.import_module(f"generated.{om}.{variant}")
    eager = module.ENTRYPOINTS[entrypoint]()
    inputs = random_inputs(module, seed=1)
    args = tuple(inputs[p] for p in inspect.signature(eager.forward).parameters)
    torch._dynamo.reset()
    compiled = torch.compile(eager, fullgraph=True, backend="eager")
    try:
        expected = eager(*args)
    except (IndexError, RuntimeError, ValueError):  # random values out of an input's domain (given targets)
        with pytest.raises(Exception) as info:
            compiled(*args)
        from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

        tracing = (torch._dynamo.exc.TorchDynamoException, GuardOnDataDependentSymNode)
        assert not isinstance(info.value, tracing), info.value  # the same domain error, not a failed trace
        return
    got = compiled(*args)
    assert expected.keys() == got.keys()
    for key in expected:  # the traced static path (export.yaml): equal, or equal up to rounding where export is
        if (om, entrypoint) in EXPORT_CLOSE:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=f"{entrypoint}: {key}")
        else:
            assert torch.equal(expected[key], got[key]), f"{variant}.{entrypoint}: {key} differs when compiled"


@pytest.mark.parametrize("spec_path", SPECS, ids=[str(p) for p in SPECS])
def test_an_empty_batch_gives_empty_results(spec_path):
    """Every entrypoint of every variant on a batch of no images: per-image results with no images, no rows, finite
    losses (no reshape to -1 of an empty tensor, no max of nothing, no concatenation of no parts)."""
    import inspect

    result = compile_spec(spec_path)
    for graph in result.graphs:
        module = importlib.import_module(f"generated.{graph.spec.om}.{graph.om.variant.module_name}")
        inputs = random_inputs(module, seed=2)
        empty = {name: value[:0] if isinstance(value, torch.Tensor) and str(graph.spec.inputs_by_name[name].shape[0])
                 == "N" else value for name, value in inputs.items()}
        for entrypoint in graph.spec.entrypoints:
            eager = module.ENTRYPOINTS[entrypoint.name]()
            got = eager(*[empty[p] for p in inspect.signature(eager.forward).parameters])
            for key, value in got.items():
                shape = graph.by_name[key].term.shape
                where = f"{graph.om.variant.name}.{entrypoint.name}: {key}"
                if shape is not None and len(shape) > 0 and shape[0] == "N":
                    assert value.shape[0] == 0, (where, value.shape)
                elif shape is not None and len(shape) == 0:
                    assert bool(torch.isfinite(value)), (where, value)
