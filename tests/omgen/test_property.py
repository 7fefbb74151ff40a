"""Property test: the compiler agrees with a dynamic reference interpreter on random specs.

Random DAG specs (inputs, config, blocks with random bases, mixins that
override terms with and without super() chains, variants, entrypoints) are
written as YAML, compiled with omgen, imported, and run on random inputs.
The reference interpreter (reference_interpreter.py) builds the same spec
with real Python classes and type(), so Python's MRO and super() are the
oracle. Checked for every variant:

- omgen rejects the variant exactly when Python refuses the hierarchy
  (TypeError from type()) or the spec language's static rules do;
- every entrypoint returns the interpreter's values and takes exactly the
  inputs the interpreter read;
- forward calls each term method the interpreter evaluated, as often (each
  term exactly once; a definition behind super() once per super() call)
  and no other method;
- Session computes every term once, with the same values;
- a few examples also pass torch.jit.script with the same values.
"""
from __future__ import annotations

import collections
import importlib.util
import inspect
import itertools
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings, strategies as st

import omgen
from omgen import SpecErrors
from reference_interpreter import ReferenceOM  # tests/omgen is on sys.path (pytest's rootdir-relative import)

_module_ids = itertools.count()


# --------------------------------------------------------------- generation


def _expression(draw, tensors: list[str]) -> str:
    """Simple arithmetic on tensors: every name in `tensors` once, in a random order, with a config scale."""
    order = draw(st.permutations(tensors))
    expression = order[0]
    for operand in order[1:]:
        op = draw(st.sampled_from(["+", "-", "*"]))
        if op == "*":
            operand = f"torch.tanh({operand})"  # keeps magnitudes tame through deep chains
        expression = f"({expression} {op} {operand})"
    scale = draw(st.sampled_from(["", "", "c0", "c1", "k0", "0.5", "2.0"]))
    if scale:
        expression = f"{expression} * {scale}"
    wrap = draw(st.sampled_from(["", "", "", "torch.tanh", "torch.sigmoid"]))
    if wrap:
        expression = f"{wrap}({expression})"
    return expression


def _term_entry(draw, deps: list[str], use_super: bool, new: bool = False) -> dict:
    tensors = list(deps) + (["super()"] if use_super else [])
    if use_super and draw(st.integers(0, 9)) == 0:
        tensors.append("super()")  # super() twice: the overridden definition runs twice, like Python
    expression = _expression(draw, tensors)
    entry: dict = {"new": True} if new else {}
    if draw(st.integers(0, 4)) == 0:
        entry["body"] = f"h = {expression}\nreturn h * 0.5 + {tensors[0]}\n"
    else:
        entry["expr"] = expression
    return entry


def _bases(draw, names: list[str], min_size: int = 0, max_size: int = 2) -> list[str]:
    """A unique list of earlier classes; usually the later (more derived) first, so that C3 mostly succeeds."""
    if not names:
        return []
    chosen = draw(st.lists(st.sampled_from(names), unique=True, min_size=min_size, max_size=max_size))
    if draw(st.integers(0, 3)):
        chosen.sort(key=names.index, reverse=True)
    return chosen


def _closure(name: str, bases: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(bases[current])
    return seen


@st.composite
def om_specs(draw) -> dict:
    inputs = {f"x{i}": {"type": "Tensor", "shape": ["N", draw(st.sampled_from([1, 4]))], "dtype": "float"}
              for i in range(draw(st.integers(1, 3)))}
    input_names = list(inputs)
    config = {"c0": {"type": "float", "default": draw(st.sampled_from([0.5, 1.5, -0.25]))},
              "c1": {"type": "float", "default": draw(st.sampled_from([2.0, -1.0, 0.75]))},
              "k0": {"type": "int", "default": draw(st.integers(-2, 3))}}

    block_names = [f"B{i}" for i in range(draw(st.integers(1, 4)))]
    bases: dict[str, list[str]] = {}
    for index, name in enumerate(block_names):
        earlier = block_names[:index]
        bases[name] = _bases(draw, earlier)
    declared: dict[str, dict[str, dict]] = {name: {} for name in block_names}
    rank: dict[str, float] = {}

    def visible(owner: str, below: float) -> list[str]:
        names = {t for cls in _closure(owner, bases) for t in declared[cls]}
        return sorted((t for t in names if rank[t] < below), key=rank.__getitem__)

    def pick_deps(candidates: list[str], at_least_one: bool) -> list[str]:
        pool = candidates + input_names
        deps = draw(st.lists(st.sampled_from(pool), unique=True, min_size=1 if at_least_one else 0, max_size=3))
        return deps

    for index in range(draw(st.integers(1, 15))):
        owner = block_names[0] if index == 0 else draw(st.sampled_from(block_names))
        ancestors = _closure(owner, bases) - {owner}
        inherited = sorted({t for cls in ancestors for t in declared[cls]} - set(declared[owner]))
        elsewhere = sorted({t for cls in block_names for t in declared[cls]} - set(declared[owner]))
        how = draw(st.sampled_from(["new", "new", "new", "override", "sibling"]))
        if how == "override" and inherited:
            name = draw(st.sampled_from(inherited))  # a block overrides a term of its bases
            use_super = draw(st.booleans())
        elif how == "sibling" and elsewhere:
            name = draw(st.sampled_from(elsewhere))  # same name in an unrelated block: the MRO decides
            use_super = draw(st.integers(0, 2)) == 0  # super() may reach a sibling (diamond), or nothing
        else:
            name, use_super = f"t{index}", False
            rank[name] = index
        deps = pick_deps(visible(owner, rank[name]), at_least_one=not use_super)
        declared[owner][name] = _term_entry(draw, deps, use_super)

    compose = draw(st.lists(st.sampled_from(block_names), unique=True, min_size=1, max_size=3))
    compose_terms = sorted({t for b in compose for cls in _closure(b, bases) for t in declared[cls]},
                           key=rank.__getitem__)
    if not compose_terms:
        compose.append(block_names[0])
        compose_terms = sorted(declared[block_names[0]], key=rank.__getitem__)

    stray = sorted({t for b in block_names for t in declared[b]} - set(compose_terms), key=rank.__getitem__)
    mixin_names = [f"mix-{i}" for i in range(draw(st.sampled_from([0, 1, 2, 3, 4, 4])))]
    for index, name in enumerate(mixin_names):
        chosen = _bases(draw, mixin_names[:index])
        if draw(st.integers(0, 6)) == 0:
            chosen.append(draw(st.sampled_from(block_names)))  # a mixin may list a block as a base
        bases[name] = chosen
        declared[name] = {}
        for _ in range(draw(st.integers(1, 3))):
            reachable = sorted(set(compose_terms) | {t for cls in _closure(name, bases) for t in declared[cls]},
                               key=rank.__getitem__)
            if draw(st.integers(0, 4)) == 0:  # a new term
                term = f"n{index}_{len(declared[name])}"
                rank[term] = draw(st.integers(0, max(int(max(rank.values())), 0))) + 0.5
                deps = pick_deps([t for t in reachable if rank[t] < rank[term]], at_least_one=True)
                declared[name][term] = _term_entry(draw, deps, False, new=True)
                continue
            # override; prefer the first terms so that super() chains through several mixins form
            term = draw(st.sampled_from(reachable[:2] * 3 + reachable))
            if draw(st.integers(0, 9)) == 0 and stray:
                term = draw(st.sampled_from(stray))  # defined only outside the composition: may be an error
            if term in declared[name]:
                continue
            use_super = draw(st.sampled_from([True, True, False]))
            deps = pick_deps([t for t in reachable if rank[t] < rank[term]], at_least_one=not use_super)
            declared[name][term] = _term_entry(draw, deps, use_super)

    variants: dict = {"base": []}
    for index in range(draw(st.integers(0, 3)) if mixin_names else 0):
        mixins = _bases(draw, mixin_names, min_size=1, max_size=3)
        if draw(st.booleans()):
            variants[f"var-{index}"] = {"mixins": mixins, "config": {"c0": draw(st.sampled_from([3.0, -0.5]))}}
        else:
            variants[f"var-{index}"] = mixins
    if len(mixin_names) > 1:
        variants["all"] = _bases(draw, mixin_names, min_size=len(mixin_names), max_size=len(mixin_names))
    entrypoints = {f"ep{i}": draw(st.lists(st.sampled_from(compose_terms), unique=True, min_size=1, max_size=4))
                   for i in range(draw(st.integers(1, 2)))}
    return {
        "om": "prop",
        "config": config,
        "inputs": inputs,
        "blocks": {b: {"bases": bases[b], "terms": declared[b]} for b in block_names},
        "compose": compose,
        "mixins": {m: {"bases": bases[m], "terms": declared[m]} for m in mixin_names},
        "variants": variants,
        "entrypoints": entrypoints,
    }


# ------------------------------------------------------------------ helpers


def expected_outcome(reference: ReferenceOM, variant: str) -> list[str]:
    """Why the variant must be rejected (empty: it must compile)."""
    try:
        reference.build_all()  # Python rejects an inconsistent class at its definition, used or not
        reference.variant_class(variant)
    except TypeError as exc:
        return [f"python: {exc}"]
    return reference.problems(variant)


def import_generated(path: Path):
    name = f"_omgen_property_{next(_module_ids)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # torch.jit.script reads the source through sys.modules
    spec.loader.exec_module(module)
    return module


def method_name(term: str, owner: str, winner: str) -> str:
    return term if owner == winner else f"_{term}__{owner.replace('-', '_')}"


def count_calls(terms_instance: torch.nn.Module, terms_class: type) -> collections.Counter:
    """Wrap every term method of an instance of the generated Terms; returns the live counter."""
    counts: collections.Counter = collections.Counter()
    for name, member in vars(terms_class).items():
        if name.startswith("__") or not inspect.isfunction(member):
            continue
        bound = getattr(terms_instance, name)

        def wrapper(*args, _name=name, _bound=bound):
            counts[_name] += 1
            return _bound(*args)

        terms_instance.__dict__[name] = wrapper  # instance attributes win over the class's methods
    return counts


def expected_calls(reference: ReferenceOM, variant: str, counts: collections.Counter) -> collections.Counter:
    winners = {term: reference.chain(variant, term)[0] for term, _ in counts}
    return collections.Counter({method_name(term, owner, winners[term]): n for (term, owner), n in counts.items()})


def random_inputs(spec: dict, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(3, decl["shape"][1], generator=generator) for name, decl in spec["inputs"].items()}


def super_depth(reference: ReferenceOM, variant: str) -> int:
    """The most definitions one term reaches through super() (0: no super() at all)."""
    deepest = 0
    for term in reference.variant_class(variant)._term_names:
        chain = reference.chain(variant, term)
        depth = 0
        while depth < len(chain) and "super()" in str(reference.declared(chain[depth])[term]):
            depth += 1
        deepest = max(deepest, depth)
    return deepest


def compile_variants(spec: dict, directory: Path, adhoc: list[str] = ()) -> tuple[ReferenceOM, dict[str, Path]]:
    """Compile each variant alone (and `adhoc`, like `omgen compile --mixin`); check omgen rejects exactly
    the variants the reference rejects."""
    path = directory / "prop.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    reference = ReferenceOM(spec)
    compiled = {}
    todo = [(variant, {"variants": [variant]}) for variant in spec["variants"]]
    if adhoc:
        name = "__".join(m.replace("-", "_") for m in adhoc)
        reference.variants[name] = (list(adhoc), {})
        todo.append((name, {"mixins": list(adhoc)}))
    for variant, selection in todo:
        why = expected_outcome(reference, variant)
        try:
            result = omgen.compile_spec(path, **selection, out=directory / "generated")
        except SpecErrors as exc:
            event("variant rejected: " + ("python TypeError" if why and why[0].startswith("python:") else "spec rule"))
            assert why, f"omgen rejected variant '{variant}', which Python accepts:\n{exc}"
            if why[0].startswith("python:"):
                assert "consistent method resolution order" in str(exc) or "cyclic" in str(exc), str(exc)
            continue
        assert not why, f"omgen compiled variant '{variant}' but the reference says: {why}"
        omgen.write(result)
        event(f"variant compiled; deepest super() chain {super_depth(reference, variant)}")
        compiled[variant] = next(f.path for f in result.files if f.path.stem == variant.replace("-", "_"))
    return reference, compiled


# -------------------------------------------------------------------- tests


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=om_specs(), seed=st.integers(0, 2**16), data=st.data())
def test_generated_code_equals_reference_interpreter(spec, seed, data, tmp_path_factory):
    adhoc = data.draw(st.lists(st.sampled_from(sorted(spec["mixins"])), unique=True, max_size=3)
                      if spec["mixins"] else st.just([]), label="--mixin")
    reference, compiled = compile_variants(spec, tmp_path_factory.mktemp("prop"), adhoc)
    inputs = random_inputs(spec, seed)
    for variant, path in compiled.items():
        module = import_generated(path)
        try:
            assert set(module.ENTRYPOINTS) == set(spec["entrypoints"])
            assert module.MIXINS == tuple(reference.variants[variant][0])
            config = data.draw(st.fixed_dictionaries({}, optional={"c1": st.sampled_from([0.25, -2.0]),
                                                                   "k0": st.integers(-3, 3)}), label="config")
            for entrypoint, outputs in spec["entrypoints"].items():
                instance = reference.instance(variant, config)
                expected = instance.evaluate(outputs, inputs)
                for term in {t for t, _ in instance.counts}:
                    assert instance.counts[(term, reference.chain(variant, term)[0])] == 1  # ModulOM: once

                generated = module.ENTRYPOINTS[entrypoint](**config)
                params = list(inspect.signature(generated.forward).parameters)
                assert params == [i for i in spec["inputs"] if i in instance.inputs_used], (variant, entrypoint)
                calls = count_calls(generated, module.Terms)
                got = generated(**{p: inputs[p] for p in params})
                assert list(got) == outputs
                for name in outputs:
                    assert torch.equal(got[name], expected[name]), (variant, entrypoint, name)
                assert calls == expected_calls(reference, variant, instance.counts), (variant, entrypoint)

            # Session: every term of the variant, lazily, once each
            instance = reference.instance(variant, config)
            instance.bind(inputs)
            session = module.Session(**config)
            session.bind(**inputs)
            calls = count_calls(session.terms, module.Terms)
            for term in sorted(instance._term_names):
                assert torch.equal(getattr(session, term)(), instance.value(term)), (variant, term)
                assert torch.equal(getattr(session, term)(), instance.value(term)), (variant, term)
            assert calls == expected_calls(reference, variant, instance.counts), variant
        finally:
            sys.modules.pop(module.__name__, None)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=om_specs(), seed=st.integers(0, 2**16))
def test_generated_code_scripts(spec, seed, tmp_path_factory):
    """torch.jit.script of every entrypoint and Session of one variant (scripting is slow: few examples)."""
    reference, compiled = compile_variants(spec, tmp_path_factory.mktemp("script"))
    if not compiled:
        return
    variant, path = max(compiled.items(), key=lambda item: len(reference.variants[item[0]][0]))
    module = import_generated(path)
    inputs = random_inputs(spec, seed)
    try:
        for entrypoint, outputs in spec["entrypoints"].items():
            scripted = torch.jit.script(module.ENTRYPOINTS[entrypoint]())
            expected = reference.instance(variant).evaluate(outputs, inputs)
            params = list(inspect.signature(module.ENTRYPOINTS[entrypoint].forward).parameters)[1:]
            got = scripted(*[inputs[p] for p in params])
            assert list(got) == outputs
            for name in outputs:
                torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)
        session = torch.jit.script(module.Session())
        session.bind(**inputs)
        instance = reference.instance(variant)
        instance.bind(inputs)
        for term in sorted(instance._term_names):
            torch.testing.assert_close(getattr(session, term)(), instance.value(term), rtol=1e-5, atol=1e-6)
    finally:
        sys.modules.pop(module.__name__, None)


# ------------------------------------------- regressions found by the reference


def _compile_one(tmp_path: Path, spec: dict):
    """Compile and import every variant; None when omgen rejects the spec (a SpecErrors is an acceptable fix)."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        result = omgen.compile_spec(path, out=tmp_path / "generated")
    except SpecErrors:
        return None
    omgen.write(result)
    return result


def _tiny_spec(**changes) -> dict:
    spec = {"om": "tiny", "inputs": {"x": {"type": "Tensor", "shape": ["N"], "dtype": "float"}},
            "blocks": {"A": {"terms": {"y": {"expr": "x * 2.0"}, "z": {"expr": "x * 3.0"}}}},
            "compose": ["A"], "entrypoints": {"out": ["y", "z"]}}
    spec.update(changes)
    return spec


def test_mixin_names_differing_by_dash_and_underscore(tmp_path):
    spec = _tiny_spec(mixins={"top": {"terms": {"y": {"expr": "super() - 100.0"}}},
                              "m-1": {"terms": {"y": {"expr": "super() + 1.0"}}},
                              "m_1": {"terms": {"y": {"expr": "super() * 3.0"}}}},
                      variants={"both": ["top", "m-1", "m_1"]})
    if _compile_one(tmp_path, spec) is None:
        return
    module = import_generated(tmp_path / "generated" / "tiny" / "both.py")
    x = torch.arange(3.0)
    expected = ReferenceOM(spec).instance("both").evaluate(["y", "z"], {"x": x})
    got = module.ENTRYPOINTS["out"]()(x)
    assert torch.equal(got["y"], expected["y"])  # ((2x) * 3 + 1) - 100 (omgen used to drop the "+ 1")


@pytest.mark.parametrize("names", [("a_b", "a__b"), ("out", "session")])
def test_entrypoint_class_names_do_not_collide(tmp_path, names):
    spec = _tiny_spec(entrypoints={names[0]: ["y"], names[1]: ["z"]})
    if _compile_one(tmp_path, spec) is None:
        return
    module = import_generated(tmp_path / "generated" / "tiny" / "base.py")
    x = torch.arange(3.0)
    for name, outputs in spec["entrypoints"].items():
        assert list(module.ENTRYPOINTS[name]()(x)) == outputs, name


def test_variant_module_names_do_not_collide(tmp_path):
    spec = _tiny_spec(mixins={"double": {"terms": {"y": {"expr": "2.0 * super()"}}}},
                      variants={"v-1": [], "v_1": ["double"]})
    result = _compile_one(tmp_path, spec)
    if result is None:
        return
    paths = [f.path for f in result.files if f.path.name != "__init__.py"]
    assert len(set(paths)) == len(paths), paths


@pytest.mark.parametrize("name", ["bind", "terms", "forward"])
def test_input_names_do_not_hide_session_members(tmp_path, name):
    spec = _tiny_spec(inputs={name: {"type": "Tensor", "shape": ["N"], "dtype": "float"}},
                      blocks={"A": {"terms": {"y": {"expr": f"{name} * 2.0"}, "z": {"expr": f"{name} * 3.0"}}}})
    if _compile_one(tmp_path, spec) is None:
        return
    module = import_generated(tmp_path / "generated" / "tiny" / "base.py")
    x = torch.arange(3.0)
    for session in (module.Session(), torch.jit.script(module.Session())):
        session.bind(x)
        assert torch.equal(session.y(), 2.0 * x)
