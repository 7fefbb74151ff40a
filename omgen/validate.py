"""Spec-wide checks that do not depend on a variant, for specs from either frontend.

Names that would collide in the generated module (after '-' becomes '_'),
names that would hide a generated member, and every block's and mixin's own
C3 order (Python rejects an inconsistent class at its definition, used or not).
"""
from __future__ import annotations

from . import limits
from .errors import ErrorCollector, Location, did_you_mean
from .model import Spec
from .names import GENERATED_NAMES, MODULE_MEMBERS
from .shapes import is_expression, names_in
from .resolve import InconsistentHierarchy, c3_linearise



def validate_spec(spec: Spec) -> None:
    """Raise SpecErrors listing every spec-wide problem (run by `omgen.compile.load` on every spec)."""
    errors = ErrorCollector()
    _unique(errors, [(b.ident, b.name, b.location) for b in spec.blocks], "block or mixin",
            "its method names (_<term>__<owner>)")
    _unique(errors, [(v.module_name, v.name, v.location) for v in spec.variants], "variant", "its file name")
    _unique(errors, [(e.class_name, e.name, e.location) for e in spec.entrypoints], "entrypoint", "its class name")
    for entrypoint in spec.entrypoints:
        if entrypoint.class_name in GENERATED_NAMES or entrypoint.class_name in spec.functions_by_name:
            errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}' would be the class "
                         f"'{entrypoint.class_name}', a name the generated module already uses", "rename the entrypoint")
    for decl in spec.inputs:
        if decl.name in MODULE_MEMBERS or decl.name.startswith("_"):
            errors.error(decl.location, f"input '{decl.name}' would hide the generated Session's member '{decl.name}'",
                         "choose another name")
    int_config = {c.name for c in spec.config if c.type == "int"}
    for decl in spec.inputs:
        for dim in decl.shape or ():
            if isinstance(dim, str) and dim in spec.config_by_name and dim not in int_config:
                errors.error(decl.location, f"shape of input '{decl.name}': config '{dim}' is a "
                             f"{spec.config_by_name[dim].type}, not an int")
            elif is_expression(dim):
                for name in names_in(dim):  # type: ignore[arg-type]
                    if name not in int_config:
                        errors.error(decl.location, f"shape of input '{decl.name}': '{name}' in '{dim}' is not an "
                                     "int config value", did_you_mean(name, int_config) or "symbols stand alone")
    for function in spec.functions:
        if function.name in GENERATED_NAMES or function.name.startswith("_check"):
            errors.error(function.location, f"function '{function.name}' has a name the generated module uses",
                         "choose another name")
    blocks = spec.blocks_by_name
    for block in spec.blocks:
        for base in block.bases:
            if base not in blocks:
                errors.error(block.location, f"'{block.name}' has unknown base '{base}'", did_you_mean(base, blocks))
    for name in spec.compose:
        if name not in blocks:
            errors.error(spec.location, f"compose lists unknown block '{name}'", did_you_mean(name, blocks))
        elif blocks[name].kind != "block":
            errors.error(spec.location, f"compose lists '{name}', which is a mixin", "list mixins in a variant")
    bases_of = {b.name: tuple(x for x in b.bases if x in blocks) for b in spec.blocks}
    too_deep = _inheritance_too_deep(bases_of)
    if too_deep:  # C3 recurses through the bases
        errors.error(blocks[too_deep].location, f"'{too_deep}' has bases nested more than {limits.MAX_BASE_DEPTH} deep")
        errors.raise_if_any()
    for block in spec.blocks:
        try:
            c3_linearise(block.name, bases_of)
        except InconsistentHierarchy as exc:
            where = spec.blocks_by_name[exc.cls].location if exc.cls in spec.blocks_by_name else block.location
            errors.error(where, f"{exc} (in '{exc.cls}')", "reorder the bases as Python would require")
    errors.raise_if_any()


def _inheritance_too_deep(bases_of: dict[str, tuple[str, ...]]) -> str | None:
    """A block whose chain of bases is longer than the limit (or part of a cycle), found without recursion."""
    depth: dict[str, int] = {}
    for start in bases_of:
        stack = [(start, iter(bases_of[start]))]
        on_path = {start}
        while stack:
            name, pending = stack[-1]
            child = next((b for b in pending if b not in depth), None)
            if child is None:
                depth[name] = 1 + max((depth.get(b, 0) for b in bases_of[name]), default=0)
                on_path.discard(name)
                stack.pop()
                continue
            if child in on_path:
                depth[child] = 0  # a cycle: C3 reports it
                continue
            if len(stack) >= limits.MAX_BASE_DEPTH:
                return start
            on_path.add(child)
            stack.append((child, iter(bases_of[child])))
    return None


def _unique(errors: ErrorCollector, items: list[tuple[str, str, Location]], what: str, why: str) -> None:
    seen: dict[str, tuple[str, Location]] = {}
    for key, name, location in items:
        if key in seen and seen[key][0] != name:
            errors.error(location, f"{what} '{name}' and '{seen[key][0]}' would share {why} '{key}'",
                         f"rename one (first at {seen[key][1]})")
        seen.setdefault(key, (name, location))
