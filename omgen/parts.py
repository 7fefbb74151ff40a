"""Terms that return several values: each named part of a tuple-valued term becomes a term of its own.

``outputs: [centers_pred, center_scores, center_valid]`` on ``center_topk`` (YAML;
``@term(outputs=[...])`` in Python) stands for the projection terms a spec used
to spell out (``centers_pred: {expr: center_topk[0]}``, ...). Both frontends
record the parts on the term; this one shared step, run by ``omgen.compile.load``
after either loader, makes a ``TermDef`` per part right after its term, in the
same block, at the term's spec line. Every later stage sees ordinary terms:
a part is one local in the generated code, can be needed alone, overridden by
a mixin or fed to an entrypoint; ``omgen convert`` writes the parts back as
``outputs`` (``TermDef.part_of`` marks the made terms).
"""
from __future__ import annotations

import dataclasses

from .errors import ErrorCollector
from .model import Block, Code, Spec, TermDef
from .types import tuple_items


def expand_parts(spec: Spec) -> Spec:
    """``spec`` with a term per part of every tuple-valued term; SpecErrors on parts that cannot be."""
    errors = ErrorCollector()
    first_owner: dict[str, str] = {}
    blocks = []
    for block in spec.blocks:
        terms: list[TermDef] = []
        written = {t.name for t in block.terms}
        for term in block.terms:
            terms.append(term)
            if not term.parts:
                continue
            first_owner.setdefault(term.name, block.name)
            items = tuple_items(term.type)
            if term.type is not None and items is None:
                errors.error(term.location, f"term '{term.name}' names outputs but its type is {term.type}, not a "
                             "Tuple[...]", "declare type: Tuple[Tensor, ...] or leave the type out")
            elif items is not None and len(items) != len(term.parts):
                errors.error(term.location, f"term '{term.name}' names {len(term.parts)} outputs for its "
                             f"{len(items)}-tuple type {term.type}", "name one output per element")
            for part in term.parts:
                if part.name == term.name:
                    errors.error(part.location, f"output '{part.name}' of term '{term.name}' has the term's own "
                                 "name", "give the part its own name")
                    continue
                if part.name in written:
                    errors.error(part.location, f"output '{part.name}' of term '{term.name}' is also a term of "
                                 f"'{block.name}'", "a name is defined once per block: rename one")
                    continue
                written.add(part.name)
                declared = items[part.index] if items and part.index < len(items) else None
                if part.type is not None and declared is not None and part.type != declared:
                    errors.error(part.location, f"output '{part.name}' of term '{term.name}' has type {part.type}, "
                                 f"but element {part.index} of {term.type} is {declared}", "keep one type")
                code = Code.from_expr(f"{term.name}[{part.index}]", part.location)
                terms.append(TermDef(part.name, block.name, code, part.type or declared, part.shape, part.math,
                                     part.doc, term.is_new, part.location, is_probe=part.is_probe,
                                     part_of=term.name))
        blocks.append(dataclasses.replace(block, terms=tuple(terms)) if len(terms) != len(block.terms) else block)
    errors.raise_if_any()
    return dataclasses.replace(spec, blocks=tuple(blocks))


def split_parts(block: Block) -> tuple[TermDef, ...]:
    """A block's terms as written in a spec: the made part terms left out (they are on their term)."""
    return tuple(t for t in block.terms if t.part_of is None)


__all__ = ["expand_parts", "split_parts"]
