"""The spec model: what a spec says, independent of its file format.

Both frontends (YAML and Python) produce a `Spec`; every later stage reads
only these frozen dataclasses, each item carrying its spec location.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

from .errors import Location


@dataclasses.dataclass(frozen=True)
class Code:
    """Python source of a body, as a function body (statements ending in return).

    `origin` is where the first line of `source` sits in the spec file, so a
    line of the body maps back to `origin.line + body_line - 1`.
    """

    source: str
    origin: Location
    column_offset: int = 0  # columns the spec adds before each body line
    first_line_shift: int = 0  # columns `source` adds before the spec text on its first line
    # Python frontend: per line of `source`, (spec line, column shift, then optional anchor pairs
    # (col, extra shift): from col on, add extra), for bodies whose lines moved or were rewritten
    # (docstring removed, branches folded, self.x() -> x); empty means "consecutive lines from origin"
    line_map: tuple[tuple[int, ...], ...] = ()

    def location_of(self, line: int, col: int) -> Location:
        """Spec location of a (1-based line, 0-based col) position in `source`."""
        if self.line_map:
            entry = self.line_map[min(max(line, 1), len(self.line_map)) - 1]
            extra = 0
            for k in range(2, len(entry) - 1, 2):
                if col >= entry[k]:
                    extra = entry[k + 1]
            return Location(self.origin.file, entry[0], col + 1 + entry[1] + extra)
        if line == 1 and self.origin.col > 0:
            return Location(self.origin.file, self.origin.line, self.origin.col + max(col - self.first_line_shift, 0))
        return Location(self.origin.file, self.origin.line + line - 1, col + 1 + self.column_offset)

    @classmethod
    def from_expr(cls, text: str, origin: Location, column_offset: int = 0) -> "Code":
        """A body that returns `text`; a one-line expression stays on one line."""
        text = text.strip()
        if "\n" not in text:
            return cls(f"return {text}\n", origin, column_offset, first_line_shift=len("return "))
        body = "\n".join("    " + line for line in text.splitlines())
        return cls(f"return (\n{body}\n)\n", origin.shifted(-1, 0), column_offset - 4)


@dataclasses.dataclass(frozen=True)
class ConfigDecl:
    name: str
    type: str
    default: Any
    doc: str
    location: Location


@dataclasses.dataclass(frozen=True)
class InputDecl:
    name: str
    type: str  # a type string, or SIZE: an input that carries only sizes (its shape names them)
    shape: tuple[str | int, ...] | None
    dtype: str
    role: str
    doc: str
    location: Location

    @property
    def value_type(self) -> str:
        """The Python type the generated code takes (a size input is a list of ints)."""
        return "List[int]" if self.type == SIZE else self.type


#: The type of an input that carries only sizes, e.g. the output grid [h, w] that targets are drawn on.
SIZE = "Size"


@dataclasses.dataclass(frozen=True)
class FunctionDecl:
    name: str
    args: tuple[tuple[str, str], ...]
    returns: str
    doc: str
    code: Code
    location: Location


@dataclasses.dataclass(frozen=True)
class TermPart:
    """One named part of a term that returns a tuple (``outputs:``): a term of its own, ``whole[index]``."""

    name: str
    index: int
    type: str | None
    shape: tuple[str | int, ...] | None
    math: str | None
    doc: str
    is_probe: bool
    location: Location


@dataclasses.dataclass(frozen=True)
class TermDef:
    """One definition of a term by one block or mixin.

    `type`, `shape` and `math` are None when an override inherits them.
    `specialisation` is set by the Python frontend for a term made from a
    method called with literal mode arguments.
    """

    name: str
    owner: str
    code: Code
    type: str | None
    shape: tuple[str | int, ...] | None
    math: str | None
    doc: str
    is_new: bool
    location: Location
    specialisation: str | None = None  # e.g. "semantic_pred('logits')" (Python frontend)
    is_probe: bool = False  # kept for inspection through Session: no warning when no entrypoint needs it
    parts: tuple[TermPart, ...] = ()  # the named parts of a tuple-valued term (each becomes a term, omgen/parts.py)
    part_of: str | None = None  # set on the term omgen/parts.py makes for a part: the tuple-valued term
    # `into: true`: the body reads `into` (Optional[Tensor]), the tensor a per_image entrypoint holds for this
    # output's slice of the image (forward_into's result, or the batch's made at image 0), or None; a body that
    # writes its result there and returns it spares the copy into the batch's results
    writes_into: bool = False


@dataclasses.dataclass(frozen=True)
class Block:
    """A block or a mixin: terms plus bases. Mixins are blocks of kind 'mixin'."""

    name: str
    kind: str  # "block" | "mixin"
    bases: tuple[str, ...]
    terms: tuple[TermDef, ...]
    doc: str
    location: Location

    @property
    def ident(self) -> str:
        """The name as a Python identifier (mixin names may contain dashes)."""
        return self.name.replace("-", "_")


@dataclasses.dataclass(frozen=True)
class VariantDecl:
    name: str
    mixins: tuple[str, ...]
    config: tuple[tuple[str, Any, Location], ...]  # (name, value, where it is set)
    doc: str
    location: Location

    @property
    def module_name(self) -> str:
        return self.name.replace("-", "_")


@dataclasses.dataclass(frozen=True)
class EntrypointDecl:
    name: str
    outputs: tuple[str, ...]
    doc: str
    location: Location
    per_image: bool = False  # eager and TorchScript run the batch one image at a time (small temporaries)
    # per_image outputs that number rows, as (output, leading size of the rows they number): one image's values
    # count from 0, the batch's add the rows of the earlier images (the batch size N: the image's number)
    numbers: tuple[tuple[str, str], ...] = ()
    # per_image `forward: batch`: forward() takes the batch at once (temporaries smaller than the outputs, where
    # copying each image's results into the batch's costs more); only forward_into goes image by image
    forward_batch: bool = False

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.replace("-", "_").split("_"))


@dataclasses.dataclass(frozen=True)
class Allowance:
    """A name outside the purity allow-list that a spec declares it needs, with the author's reason (shown to
    whoever compiles or reads the spec; `omgen check --pure` refuses any)."""

    name: str  # a dotted member (torch.cuda.synchronize), a value attribute (Tensor.numpy) or a builtin (print)
    reason: str
    location: Location


@dataclasses.dataclass(frozen=True)
class Spec:
    om: str
    doc: str
    path: str  # as shown in messages and headers
    sources: tuple[tuple[str, str], ...]  # (display path, sha256) of this file and its includes
    config: tuple[ConfigDecl, ...]
    inputs: tuple[InputDecl, ...]
    functions: tuple[FunctionDecl, ...]
    blocks: tuple[Block, ...]  # blocks and mixins
    compose: tuple[str, ...]
    variants: tuple[VariantDecl, ...]
    entrypoints: tuple[EntrypointDecl, ...]
    location: Location
    includes: tuple[str, ...] = ()  # display paths of the files this spec's own include list names
    allowances: tuple[Allowance, ...] = ()  # declared exceptions to the purity check (its own and its includes')

    def block(self, name: str) -> Block:
        return self.blocks_by_name[name]

    @functools.cached_property
    def blocks_by_name(self) -> Mapping[str, Block]:
        return {block.name: block for block in self.blocks}

    @functools.cached_property
    def config_by_name(self) -> Mapping[str, ConfigDecl]:
        return {c.name: c for c in self.config}

    @functools.cached_property
    def inputs_by_name(self) -> Mapping[str, InputDecl]:
        return {i.name: i for i in self.inputs}

    @functools.cached_property
    def functions_by_name(self) -> Mapping[str, FunctionDecl]:
        return {f.name: f for f in self.functions}

    def variant(self, name: str) -> VariantDecl:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)
