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
