"""omgen/names.py is the one list of what a generated module defines, imports and must not have hidden."""
from __future__ import annotations

import ast
from pathlib import Path

import torch

from omgen import compile_spec, names

ROOT = Path(__file__).resolve().parents[2]


def test_module_members_cover_every_public_member_of_the_installed_torch_module():
    public = {n for n in dir(torch.nn.Module) if not n.startswith("_")}
    assert public - names.TORCH_MODULE_MEMBERS == set(), "add these to omgen/names.py TORCH_MODULE_MEMBERS"
    # and nothing stale: every listed torch member exists (or is an attribute every Module instance has)
    instance = torch.nn.Module()
    assert {n for n in names.TORCH_MODULE_MEMBERS if not hasattr(instance, n)} == set()


def _generated(spec: str = "specs/examples/toy_peaks.yaml") -> ast.Module:
    result = compile_spec(ROOT / spec, variants=["base"], out=None)
    source = next(f.source for f in result.files if f.path.name == "base.py")
    return ast.parse(source)


def test_the_generated_imports_are_the_listed_ones():
    tree = _generated()
    bound = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            bound |= {(a.name, a.asname or a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            bound |= {(node.module, a.asname or a.name) for a in node.names}
    assert bound == set(names.IMPORTS)


def test_every_module_level_name_of_a_generated_module_is_listed():
    tree = _generated("specs/panoptic.yaml")
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    spec = compile_spec(ROOT / "specs/panoptic.yaml", variants=["base"]).spec
    spec_functions = {f.name for f in spec.functions}
    entrypoint_classes = {e.class_name for e in spec.entrypoints}
    assert entrypoint_classes and entrypoint_classes <= defined
    unlisted = defined - names.MODULE_DEFINITIONS - spec_functions - entrypoint_classes
    assert unlisted == set(), "add these to omgen/names.py MODULE_DEFINITIONS"


def test_every_member_the_generated_classes_add_is_listed():
    tree = _generated()
    members = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("Terms", "Session") or (
                isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "Terms" for b in node.bases)):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    members.add(item.name)
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self" \
                        and isinstance(sub.ctx, ast.Store) and not sub.attr.startswith("_"):
                    members.add(sub.attr)
    spec = compile_spec(ROOT / "specs/examples/toy_peaks.yaml", variants=["base"]).spec
    from_spec = {t.name for b in spec.blocks for t in b.terms} | {c.name for c in spec.config} | \
        {i.name for i in spec.inputs}
    assert members - from_spec - names.MODULE_MEMBERS == set()


def test_the_python_frontend_allows_exactly_the_generated_imports_plus_the_markers():
    from omgen.load_python import ALLOWED_IMPORTS

    for module, bound in names.IMPORTS:
        assert bound in ALLOWED_IMPORTS[module]
    assert set(ALLOWED_IMPORTS) - {m for m, _ in names.IMPORTS} == {"omgen", "omgen.markers", "__future__"}


# ------------------------------------------------------------------------------ warnings
SHIPPED = sorted([*(ROOT / "specs").glob("*.yaml"), *(ROOT / "specs").glob("*.py"),
                  *(ROOT / "specs" / "examples").glob("*.yaml")])


def test_every_shipped_spec_compiles_without_a_warning():
    for spec in SHIPPED:
        result = compile_spec(spec)
        assert result.warnings == (), [str(w) for w in result.warnings]


def _spec_with_extra_term(tmp_path, extra: str, variants: str = "") -> Path:
    text = (ROOT / "specs/examples/toy_peaks.yaml").read_text()
    text = text.replace("      peaks:\n", extra + "      peaks:\n", 1)
    if variants:
        text = text.replace("variants:\n  base: []\n", "variants:\n  base: []\n" + variants, 1)
    path = tmp_path / "toy.yaml"
    path.write_text(text)
    return path


def test_a_term_no_variant_needs_is_one_warning_unless_it_is_a_probe(tmp_path):
    dead = _spec_with_extra_term(tmp_path, "      heat_sq:\n        expr: heat_pred * heat_pred\n")
    warnings = compile_spec(dead).warnings
    assert len(warnings) == 1 and "'heat_sq' is not needed by any entrypoint of any variant" in warnings[0].message
    probe = _spec_with_extra_term(tmp_path, "      heat_sq:\n        probe: true\n        expr: heat_pred * heat_pred\n")
    assert compile_spec(probe).warnings == ()
    py = tmp_path / "toy.py"
    from omgen.convert import convert

    list(convert(probe, py))
    assert "probe=True" in py.read_text() and compile_spec(py).warnings == ()  # the Python frontend has it too
    back = tmp_path / "back.yaml"
    list(convert(py, back))
    assert "probe: true" in back.read_text()


def test_a_term_only_some_variants_drop_is_no_warning():
    # CenterNet's no-offset mixin switches the offset branch off: offset_pred is dead there, alive in base
    spec = ROOT / "specs/centernet.yaml"
    alone = compile_spec(spec, variants=["no-offset"]).warnings
    assert any("'offset_pred' is not needed" in w.message for w in alone)
    assert compile_spec(spec, variants=["no-offset", "base"]).warnings == ()


def test_probe_must_be_a_boolean(tmp_path):
    from omgen.errors import SpecErrors

    bad = _spec_with_extra_term(tmp_path, "      heat_sq:\n        probe: 'yes'\n        expr: heat_pred * heat_pred\n")
    try:
        compile_spec(bad)
    except SpecErrors as exc:
        assert "'probe' is true or false" in str(exc.diagnostics[0])
    else:
        raise AssertionError("probe: 'yes' compiled")
