"""Resolution: per variant, C3-linearise blocks and mixins and pick each term's definition.

The result keeps, for every term, its whole override chain (winner first),
so that `super()` can reach the next definition at any depth.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

from . import limits
from .errors import ErrorCollector, Location, did_you_mean
from .model import ConfigDecl, Spec, TermDef, VariantDecl
from .types import coerce_config_value, python_value_matches


@dataclasses.dataclass(frozen=True)
class ResolvedTerm:
    name: str
    chain: tuple[TermDef, ...]  # winning definition first, then those it overrides
    type: str
    shape: tuple[str | int, ...] | None
    math: str | None
    doc: str

    @property
    def winner(self) -> TermDef:
        return self.chain[0]


@dataclasses.dataclass(frozen=True)
class ResolvedOM:
    spec: Spec
    variant: VariantDecl
    linearisation: tuple[str, ...]  # blocks and mixins, highest priority first
    terms: tuple[ResolvedTerm, ...]  # in order of first declaration in the spec
    config_values: tuple[tuple[str, Any], ...]  # every config value after overrides

    @functools.cached_property
    def config(self) -> Mapping[str, Any]:
        """Config name → value in this variant."""
        return dict(self.config_values)

    @property
    def terms_by_name(self) -> Mapping[str, ResolvedTerm]:
        return {t.name: t for t in self.terms}


class InconsistentHierarchy(Exception):
    def __init__(self, cls: str, message: str):
        super().__init__(message)
        self.cls = cls


def c3_linearise(name: str, bases_of: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Python's C3 MRO of `name` (itself first); InconsistentHierarchy like Python's TypeError."""
    memo: dict[str, list[str]] = {}

    def linearise(cls: str, stack: tuple[str, ...]) -> list[str]:
        if cls in memo:
            return memo[cls]
        if cls in stack:
            raise InconsistentHierarchy(cls, "cyclic bases: " + " -> ".join(stack + (cls,)))
        bases = list(bases_of[cls])
        sequences = [list(linearise(b, stack + (cls,))) for b in bases] + [list(bases)]
        result = [cls]
        while True:
            sequences = [seq for seq in sequences if seq]
            if not sequences:
                break
            for seq in sequences:
                head = seq[0]
                if not any(head in other[1:] for other in sequences):
                    break
            else:
                raise InconsistentHierarchy(cls,
                    "cannot create a consistent method resolution order (MRO) for bases " + ", ".join(bases))
            result.append(head)
            for seq in sequences:
                if seq[0] == head:
                    del seq[0]
        memo[cls] = result
        return result

    return linearise(name, ())


def resolve(spec: Spec, variant: VariantDecl, overrides: Mapping[str, tuple[Any, Location]] | None = None) -> ResolvedOM:
    """Resolve one variant; raises SpecErrors listing every problem."""
    errors = ErrorCollector()
    blocks = spec.blocks_by_name  # names, bases and compose were checked by validate_spec when loading
    bases_of = {block.name: block.bases for block in spec.blocks}
    for name in variant.mixins:
        if name not in blocks:
            errors.error(variant.location, f"variant '{variant.name}' uses unknown mixin '{name}'",
                         did_you_mean(name, [b.name for b in spec.blocks if b.kind == "mixin"]))
        elif blocks[name].kind != "mixin":
            errors.error(variant.location, f"variant '{variant.name}' lists block '{name}' as a mixin",
                         "add it to compose or make it a mixin")
    if len(variant.mixins) > limits.MAX_MIXINS:
        errors.error(variant.location, f"variant '{variant.name}' has {len(variant.mixins)} mixins, more than "
                     f"{limits.MAX_MIXINS}")
    errors.raise_if_any()

    root = f"<variant {variant.name}>"
    bases_of[root] = tuple(variant.mixins) + tuple(spec.compose)
    try:
        mro = tuple(c3_linearise(root, bases_of)[1:])
    except InconsistentHierarchy as exc:
        where = blocks[exc.cls].location if exc.cls in blocks else variant.location
        errors.error(where, f"{exc} (in '{exc.cls}', variant '{variant.name}')", "reorder the bases as Python would require")
        errors.raise_if_any()
        raise  # unreachable

    chains: dict[str, list[TermDef]] = {}
    for owner in mro:
        for term in blocks[owner].terms:
            chains.setdefault(term.name, []).append(term)
    order: dict[str, int] = {}
    for term in (t for b in spec.blocks for t in b.terms):
        order.setdefault(term.name, len(order))
    resolved = []
    for name in sorted(chains, key=order.__getitem__):
        chain = tuple(chains[name])
        for position, definition in enumerate(chain):
            overridden = chain[position + 1:]
            if definition.is_new and overridden:
                errors.error(definition.location, f"'{name}' is marked new in '{definition.owner}' but overrides "
                             f"the definition in '{overridden[0].owner}'", "remove 'new: true'")
            if blocks[definition.owner].kind == "mixin" and not definition.is_new and not overridden:
                errors.error(definition.location, f"mixin '{definition.owner}' overrides '{name}', which nothing "
                             f"below it defines in variant '{variant.name}'",
                             " ".join(filter(None, [did_you_mean(name, [n for n in chains if n != name]),
                                                    "or add 'new: true' to declare a new term"])))
        if len(chain) > limits.MAX_SUPER_CHAIN:
            errors.error(chain[0].location, f"'{name}' has {len(chain)} definitions in variant '{variant.name}', "
                         f"more than {limits.MAX_SUPER_CHAIN}", "a super() chain that long would overflow the stack")
        resolved.append(_resolved_term(name, chain, errors))
    if len(resolved) > limits.MAX_TERMS:
        errors.error(variant.location, f"variant '{variant.name}' has {len(resolved)} terms, more than "
                     f"{limits.MAX_TERMS}", "split the OM into specs")
    config_values = _config_values(spec, variant, overrides or {}, errors)
    errors.raise_if_any()
    return ResolvedOM(spec, variant, mro, tuple(resolved), config_values)


def _resolved_term(name: str, chain: tuple[TermDef, ...], errors: ErrorCollector) -> ResolvedTerm:
    """Types, shapes and math inherit down the chain; a changed type is an error."""
    declared = [(d, d.type) for d in chain if d.type is not None]
    if chain[-1].type is None:
        declared.append((chain[-1], "Tensor"))  # the first definition of a term defaults to Tensor
    for (upper, upper_type), (lower, lower_type) in zip(declared, declared[1:]):
        if upper_type != lower_type:
            errors.error(upper.location, f"'{name}' in '{upper.owner}' has type {upper_type} but overrides "
                         f"'{lower.owner}' where it is {lower_type}", "an override keeps the type")
    first = lambda attr: next((getattr(d, attr) for d in chain if getattr(d, attr)), None)  # noqa: E731
    return ResolvedTerm(name, chain, declared[0][1] if declared else "Tensor", first("shape"), first("math"),
                        first("doc") or "")


def _config_values(spec: Spec, variant: VariantDecl, overrides: Mapping[str, tuple[Any, Location]],
                   errors: ErrorCollector) -> tuple[tuple[str, Any], ...]:
    decls = spec.config_by_name
    values = {c.name: c.default for c in spec.config}
    layered = [(name, value, loc) for name, value, loc in variant.config]
    layered += [(name, value, loc) for name, (value, loc) in overrides.items()]
    for name, value, loc in layered:
        decl: ConfigDecl | None = decls.get(name)
        if decl is None:
            errors.error(loc, f"unknown config value '{name}'", did_you_mean(name, decls))
        elif not python_value_matches(decl.type, value):
            errors.error(loc, f"config '{name}' is a {decl.type}, got {value!r}")
        else:
            values[name] = coerce_config_value(decl.type, value)
    return tuple(values.items())
