"""The spec's sections, checked once for both frontends.

Each loader reads only its own syntax into a raw tree (`Raw`: mappings, lists
and scalars, each with its Location); `Sections` turns that tree into model
declarations and reports every problem at its line. A YAML and a Python spec
that say the same thing therefore give the same declarations and the same
errors, and a rule changes in one place.
"""
from __future__ import annotations

import dataclasses
import inspect
import keyword
import re
from typing import Any, Callable

from .errors import ErrorCollector, Location, did_you_mean
from .model import SIZE, Allowance, ConfigDecl, EntrypointDecl, InputDecl, TermPart, VariantDecl
from .names import INTO, INTO_NAMES, MODULE_MEMBERS, RESERVED
from .shapes import ShapeSyntaxError, normalise_dim
from .types import CONFIG_TYPES, TypeSyntaxError, coerce_config_value, normalise_type, python_value_matches

CONFIG_KEYS = ("type", "default", "doc")
INPUT_KEYS = ("type", "shape", "dtype", "role", "doc")
PART_KEYS = ("type", "shape", "math", "doc", "probe")
VARIANT_KEYS = ("mixins", "config", "doc")
ENTRYPOINT_KEYS = ("outputs", "doc", "per_image")
DTYPES = ("float", "long", "int", "bool", "uint8", "any")
ROLES = ("prediction", "truth", "other")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # used with match(): \Z, not $, which admits a final newline
MIXIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")

MAP, LIST, SCALAR, NAME, EXPR = "map", "list", "scalar", "name", "expr"
NOT_A_LITERAL = object()  # what `Sections.literal` returns after reporting a name or an expression


@dataclasses.dataclass(frozen=True, eq=False)
class Raw:
    """One value of a spec file as its loader read it, before any rule is applied.

    kind: MAP (value: tuple of (key Raw, value Raw)), LIST (tuple of Raw),
    SCALAR (the str, int, float, bool or None), NAME (a bare Python name, by
    its text) or EXPR (any other expression, by its source text).
    """

    kind: str
    value: Any
    location: Location
    flow: bool = False  # a YAML mapping written inline, {...}
    text_origin: tuple[Location, int] | None = None  # YAML text: where its first character is; block indent

    def python(self) -> Any:
        """The plain value (dicts, lists, scalars) of a tree without names or expressions."""
        if self.kind == MAP:
            return {key.python(): value.python() for key, value in self.value}
        if self.kind == LIST:
            return [item.python() for item in self.value]
        return self.value

    def is_null(self) -> bool:
        return self.kind == SCALAR and self.value is None


def first_problem(raw: Raw) -> Raw | None:
    """The first name or expression inside `raw` (what a literal may not hold), depth first."""
    stack = [raw]
    while stack:
        node = stack.pop()
        if node.kind in (NAME, EXPR):
            return node
        if node.kind == MAP:
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
        elif node.kind == LIST:
            stack.extend(reversed(node.value))
    return None


class Sections:
    """The rules of every section, applied to raw trees; errors go to one collector."""

    def __init__(self, errors: ErrorCollector, display: str):
        self.errors = errors
        self.display = display  # the spec file, for errors about a missing section

    # ---- values

    def literal(self, raw: Raw, what: str) -> Any:
        """The plain value of `raw`, or NOT_A_LITERAL (reported) when it holds a name or an expression."""
        problem = first_problem(raw)
        if problem is not None:
            self.errors.error(problem.location, f"{what} must be a literal (a number, string, list or mapping)",
                              "specs are read, never run: no names or calls here")
            return NOT_A_LITERAL
        return raw.python()

    def mapping(self, raw: Raw, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, tuple[Raw, Raw]]:
        """Key -> (key, value); reports a value that is not a mapping, duplicate keys and unknown keys."""
        if raw.kind != MAP:
            self.errors.error(raw.location, f"{what} must be a mapping", "e.g. {name: ...}")
            return {}
        result: dict[str, tuple[Raw, Raw]] = {}
        for key_raw, value_raw in raw.value:
            key = key_raw.value if key_raw.kind == SCALAR else None
            if not isinstance(key, str):
                shown = repr(key) if key_raw.kind == SCALAR else key_raw.value
                self.errors.error(key_raw.location, f"keys of {what} must be strings, got {shown}")
                continue
            if key in result:
                self.errors.error(key_raw.location, f"duplicate key '{key}' in {what}",
                                  f"first at line {result[key][0].location.line}")
                continue
            if allowed is not None and key not in allowed:
                hint = did_you_mean(key, allowed) or f"expected one of: {', '.join(allowed)}"
                if not IDENTIFIER.match(key) and raw.flow:
                    hint = "a comma ends a value inside {...}: quote the expression, e.g. {expr: 'f(a, b)'}"
                self.errors.error(key_raw.location, f"unknown key '{key}' in {what}", hint)
                continue
            result[key] = (key_raw, value_raw)
        return result

    def fields(self, raw: Raw | None, what: str, allowed: tuple[str, ...], shorthand: str | None = None
               ) -> dict[str, Raw]:
        """A mapping's values by key; with `shorthand`, a scalar stands for `{shorthand: scalar}`; null is empty."""
        if raw is None or raw.is_null():
            return {}
        if shorthand and raw.kind == SCALAR:
            return {shorthand: raw}
        return {key: value for key, (_, value) in self.mapping(raw, what, allowed).items()}

    def string(self, raw: Raw | None, what: str, default: str = "", strict: bool = False) -> str:
        """Text; a number is read as its text unless `strict`; a doc is cleaned as Python cleans a docstring."""
        if raw is None or raw.is_null():
            return default
        value = raw.value if raw.kind == SCALAR else None
        allowed = (str,) if strict else (str, int, float)
        if not isinstance(value, allowed) or isinstance(value, bool):
            got = repr(value) if raw.kind == SCALAR else ("a list" if raw.kind == LIST else
                                                          "a mapping" if raw.kind == MAP else raw.value)
            self.errors.error(raw.location, f"{what} must be a string, got {got}")
            return default
        return inspect.cleandoc(str(value)) if what == "doc" else str(value)

    def strings(self, raw: Raw, what: str, items: str, example: str = "") -> list[tuple[str, Location]]:
        """A list of strings (`items` says what they are), each with its location."""
        if raw.kind != LIST:
            self.errors.error(raw.location, f"{what} must be a list of {items}", example)
            return []
        found = []
        for item in raw.value:
            text = self.string(item, f"an entry of {what}", default="", strict=True)
            if text:
                found.append((text, item.location))
        return found

    def name_list(self, raw: Raw | None, what: str, pattern: re.Pattern = IDENTIFIER) -> tuple[str, ...]:
        if raw is None or raw.is_null():
            return ()
        if raw.kind != LIST:
            self.errors.error(raw.location, f"{what} must be a list of names")
            return ()
        names: list[str] = []
        for item in raw.value:
            value = item.value if item.kind in (SCALAR, NAME) else None
            if not isinstance(value, str) or not pattern.match(value):
                shown = value if item.kind in (SCALAR, NAME) else item.value
                self.errors.error(item.location, f"{what}: '{shown}' is not a valid name")
                continue
            if value in names:
                self.errors.error(item.location, f"{what}: '{value}' is listed twice")
                continue
            names.append(value)
        return tuple(names)

    def type_string(self, raw: Raw, what: str) -> str | None:
        try:
            return normalise_type(raw.value if raw.kind in (NAME, EXPR) else self.string(raw, what))
        except TypeSyntaxError as exc:
            self.errors.error(raw.location, f"{what}: {exc}")
            return None

    def shape(self, raw: Raw | None, what: str) -> tuple[str | int, ...] | None:
        """A list of sizes, entry by entry through omgen.shapes.normalise_dim."""
        if raw is None:
            return None
        if raw.kind != LIST:
            self.errors.error(raw.location, f"{what} must be a list of sizes", "e.g. [N, 1, H, W] or [N, 2 * k]")
            return None
        dims: list[str | int] = []
        for item in raw.value:
            value = self.literal(item, what)
            if value is NOT_A_LITERAL:
                continue
            try:
                dims.append(normalise_dim(value))
            except ShapeSyntaxError as exc:
                self.errors.error(item.location, f"{what}: {exc}")
        return tuple(dims) if len(dims) == len(raw.value) else None

    def flag(self, raw: Raw | None, what: str) -> bool:
        if raw is None:
            return False
        if not (raw.kind == SCALAR and isinstance(raw.value, bool)):
            self.errors.error(raw.location, f"{what} is true or false, got {raw.value!r}")
        return raw.kind == SCALAR and raw.value is True

    # ---- names

    def check_name(self, location: Location, name: str, what: str) -> bool:
        """A name a spec defines: an identifier that no import of a generated module (nor, for a term or config
        value, a member of it) uses."""
        if not IDENTIFIER.match(name) or keyword.iskeyword(name):
            self.errors.error(location, f"{what} '{name}' is not a Python identifier")
            return False
        if name in RESERVED:
            self.errors.error(location, f"{what} '{name}' shadows the global '{name}' that bodies use")
            return False
        if name in INTO_NAMES and what != "argument":
            self.errors.error(location, f"{what} '{name}' shadows '{name}', which the body of an `{INTO}: true` "
                              "term reads", "choose another name")
            return False
        if what in ("term", "config value") and (name in MODULE_MEMBERS or name.startswith("_")):
            self.errors.error(location, f"{what} '{name}' would hide the generated module's member '{name}'",
                              "choose another name" + (" (leading '_' is reserved)" if name.startswith("_") else ""))
            return False
        return True

    # ---- sections

    def om(self, raw: Raw | None) -> str:
        if raw is None:
            self.errors.error(Location(self.display, 1, 1), "missing 'om' (the module name of the OM)")
            return ""
        om = self.string(raw, "om", strict=True)
        if (raw.is_null() or isinstance(raw.value, str)) and (not IDENTIFIER.match(om) or keyword.iskeyword(om)):
            self.errors.error(raw.location, f"om '{om}' must be a Python identifier")
        return om

    def config(self, name: str, location: Location, type_raw: Raw | None, default: Raw | None, doc: str
               ) -> ConfigDecl | None:
        """A config value: its type one of CONFIG_TYPES, its default a literal of that type."""
        if type_raw is None or default is None:
            self.errors.error(location, f"config '{name}' needs a type and a default", "e.g. {type: float, default: 0.5}")
            return None
        type_name = self.type_string(type_raw, f"type of config '{name}'")
        if type_name is None:
            return None
        if type_name not in CONFIG_TYPES:
            self.errors.error(type_raw.location, f"config '{name}' has type {type_name}",
                              f"config types are {', '.join(CONFIG_TYPES)}")
            return None
        value = self.literal(default, f"default of config '{name}'")
        if value is NOT_A_LITERAL:
            return None
        if not python_value_matches(type_name, value):
            self.errors.error(default.location, f"default of config '{name}' is {value!r}, not a {type_name}")
            return None
        return ConfigDecl(name, type_name, coerce_config_value(type_name, value), doc, location)

    def input(self, name: str, location: Location, raw: Raw) -> InputDecl:
        fields = self.fields(raw, f"input '{name}'", INPUT_KEYS)
        type_raw = fields.get("type")
        if type_raw is not None and type_raw.kind in (SCALAR, NAME) and type_raw.value == SIZE:
            return self._size_input(name, location, fields)
        type_name = self.type_string(type_raw, f"type of input '{name}'") if type_raw is not None else "Tensor"
        dtype = self.string(fields.get("dtype"), "dtype", "any")
        if dtype not in DTYPES:
            self.errors.error(fields["dtype"].location, f"input '{name}': unknown dtype '{dtype}'",
                              did_you_mean(dtype, DTYPES) or f"expected one of {', '.join(DTYPES)}")
        role = self._role(name, fields)
        return InputDecl(name, type_name or "Tensor", self.shape(fields.get("shape"), f"shape of input '{name}'"),
                         dtype, role, self.string(fields.get("doc"), "doc"), location)

    def _size_input(self, name: str, location: Location, fields: dict[str, Raw]) -> InputDecl:
        """`{type: Size, shape: [h, w]}`: a list of ints whose entries are the named sizes (checked against, or
        binding, the same names in the other inputs' shapes)."""
        shape = self.shape(fields.get("shape"), f"shape of input '{name}'")
        if "shape" not in fields:
            self.errors.error(location, f"size input '{name}' needs a shape: the sizes it carries", "e.g. shape: [h, w]")
        dtype = self.string(fields.get("dtype"), "dtype", "int")
        if dtype not in ("int", "any"):
            self.errors.error(fields["dtype"].location, f"size input '{name}' holds ints, not {dtype}",
                              "leave dtype out (or write int)")
        role = self._role(name, fields)
        return InputDecl(name, SIZE, shape, "int", role, self.string(fields.get("doc"), "doc"), location)

    def _role(self, name: str, fields: dict[str, Raw]) -> str:
        role = self.string(fields.get("role"), "role", "other")
        if role not in ROLES:
            self.errors.error(fields["role"].location, f"input '{name}': unknown role '{role}'",
                              did_you_mean(role, ROLES) or f"expected one of {', '.join(ROLES)}")
        return role

    def inputs(self, raw: Raw | None) -> list[InputDecl]:
        if raw is None or raw.is_null():
            return []
        return [self.input(name, key.location, value) for name, (key, value) in self.mapping(raw, "inputs").items()
                if self.check_name(key.location, name, "input")]

    def parts(self, term: str, raw: Raw) -> tuple[TermPart, ...]:
        """A term's `outputs`: part names in tuple order, or a mapping part name -> {type, shape, math, doc, probe}."""
        if raw.kind == LIST:
            named = [(item, None) for item in raw.value]
        elif raw.kind == MAP:
            named = list(raw.value)
        else:
            self.errors.error(raw.location, f"outputs of term '{term}' must be a list of names or a mapping",
                              "e.g. outputs: [centers_pred, center_scores] or outputs: {centers_pred: {shape: [N, k, 2]}}")
            return ()
        if not named:
            self.errors.error(raw.location, f"outputs of term '{term}' is empty", "name at least one part")
        parts = []
        for index, (key, value) in enumerate(named):
            name = key.value if key.kind in (SCALAR, NAME) else None
            if not isinstance(name, str):
                self.errors.error(key.location, f"output {index} of term '{term}' must be a name, got "
                                  f"{key.value if key.kind == EXPR else repr(name)}")
                continue
            if not self.check_name(key.location, name, "term"):
                continue
            what = f"output '{name}' of term '{term}'"
            fields = self.fields(value, what, PART_KEYS)
            type_name = self.type_string(fields["type"], f"type of {what}") if "type" in fields else None
            parts.append(TermPart(name, index, type_name, self.shape(fields.get("shape"), f"shape of {what}"),
                                  self.string(fields["math"], "math") if "math" in fields else None,
                                  self.string(fields.get("doc"), "doc"), self.flag(fields.get("probe"), f"{what}: probe"),
                                  key.location))
        return tuple(parts)

    def compose(self, raw: Raw | None, blocks: Callable[[Raw, str], tuple[str, ...]]) -> tuple[str, ...]:
        if raw is None:
            self.errors.error(Location(self.display, 1, 1), "missing 'compose' (the blocks of the base OM)")
            return ()
        return blocks(raw, "compose")

    def variants(self, raw: Raw | None, mixins: Callable[[Raw, str], tuple[str, ...]]) -> tuple[VariantDecl, ...]:
        """`mixins(raw, what)` reads a list of mixins in the frontend's own way (names, or classes)."""
        if raw is None:
            return (VariantDecl("base", (), (), "", Location(self.display, 1, 1)),)
        variants = []
        for name, (key, value) in self.mapping(raw, "variants").items():
            if not MIXIN_NAME.match(name):
                self.errors.error(key.location, f"variant name '{name}' must be letters, digits, '_' or '-'")
                continue
            what = f"mixins of variant '{name}'"
            if value.kind == LIST or value.is_null():
                variants.append(VariantDecl(name, mixins(value, what) if value.kind == LIST else (), (), "",
                                            key.location))
                continue
            fields = self.fields(value, f"variant '{name}'", VARIANT_KEYS)
            overrides = []
            config = self.mapping(fields["config"], f"config of variant '{name}'") if "config" in fields else {}
            for config_name, (config_key, config_value) in config.items():
                literal = self.literal(config_value, f"config '{config_name}'")
                if literal is not NOT_A_LITERAL:
                    overrides.append((config_name, literal, config_key.location))
            chosen = mixins(fields["mixins"], what) if "mixins" in fields and not fields["mixins"].is_null() else ()
            variants.append(VariantDecl(name, chosen, tuple(overrides), self.string(fields.get("doc"), "doc"),
                                        key.location))
        return tuple(variants)

    def entrypoints(self, raw: Raw | None, output: Callable[[Raw, str], str | None]) -> tuple[EntrypointDecl, ...]:
        """`output(raw, entrypoint)` reads one output in the frontend's own way (a name, or a mode call)."""
        if raw is None:
            self.errors.error(Location(self.display, 1, 1), "missing 'entrypoints' (which terms each module returns)")
            return ()
        entrypoints = []
        for name, (key, value) in self.mapping(raw, "entrypoints").items():
            if not IDENTIFIER.match(name):
                self.errors.error(key.location, f"entrypoint name '{name}' must be a Python identifier")
                continue
            doc, per_image, numbers, forward_batch = "", False, (), False
            if value.kind != LIST:
                fields = self.fields(value, f"entrypoint '{name}'", ENTRYPOINT_KEYS)
                doc = self.string(fields.get("doc"), "doc")
                per_image, numbers, forward_batch = self.per_image(fields.get("per_image"),
                                                                   f"entrypoint '{name}': per_image")
                value = fields.get("outputs") or Raw(LIST, (), key.location)
            outputs: list[str] = []
            if value.kind != LIST:
                self.errors.error(value.location, f"outputs of entrypoint '{name}' must be a list of term names")
            for item in value.value if value.kind == LIST else ():
                term = output(item, name)
                if term is None:
                    continue
                if term in outputs:
                    self.errors.error(item.location, f"outputs of entrypoint '{name}': '{term}' is listed twice")
                    continue
                outputs.append(term)
            if not outputs:
                self.errors.error(key.location, f"entrypoint '{name}' has no outputs")
            entrypoints.append(EntrypointDecl(name, tuple(outputs), doc, key.location, per_image, numbers,
                                              forward_batch))
        return tuple(entrypoints)

    def per_image(self, raw: Raw | None, what: str) -> tuple[bool, tuple[tuple[str, str], ...], bool]:
        """`per_image: true`, or `per_image: {numbers: {output: M, ...}, forward: images | batch}` (outputs whose
        values number rows of M; `forward: batch`: plain forward() takes the batch at once, forward_into goes
        image by image). Returns (per_image, numbers, forward_batch)."""
        if raw is None or raw.kind != MAP:
            return self.flag(raw, what), (), False
        fields = self.fields(raw, what, ("numbers", "forward"))
        forward_raw = fields.get("forward")
        forward = "images" if forward_raw is None else forward_raw.value if forward_raw.kind == SCALAR else None
        if forward not in ("images", "batch"):
            shown = repr(forward) if forward_raw.kind == SCALAR else "a " + forward_raw.kind
            self.errors.error(forward_raw.location, f"{what}: forward is 'images' (the default) or 'batch', got "
                              f"{shown}", "forward: batch keeps forward() on the whole batch")
            forward = "images"
        numbers_raw = fields.get("numbers")
        numbers = []
        for output, (key_raw, size_raw) in (self.mapping(numbers_raw, f"{what}: numbers").items()
                                            if numbers_raw is not None else ()):
            size = size_raw.value if size_raw.kind == SCALAR and isinstance(size_raw.value, str) else ""
            if not IDENTIFIER.match(output) or not IDENTIFIER.match(size):
                self.errors.error(key_raw.location, f"{what}: numbers maps an output to the size symbol of the "
                                  f"rows it numbers, got {output!r}: "
                                  f"{repr(size_raw.value) if size_raw.kind == SCALAR else 'a ' + size_raw.kind}",
                                  "e.g. {instance_index_truth: M}")
                continue
            numbers.append((output, size))
        return True, tuple(numbers), forward == "batch"

    def term_name(self, raw: Raw, entrypoint: str) -> str | None:
        """An entrypoint output that names a term (the YAML frontend's outputs)."""
        value = raw.value if raw.kind == SCALAR else None
        if not isinstance(value, str) or not IDENTIFIER.match(value):
            self.errors.error(raw.location, f"outputs of entrypoint '{entrypoint}': '{raw.value}' is not a valid name")
            return None
        return value

    def allowances(self, raw: Raw | None) -> tuple[Allowance, ...]:
        """`allow: {torch.cuda.synchronize: why}`: exceptions to the purity check, each with its reason."""
        if raw is None or raw.is_null():
            return ()
        return tuple(Allowance(name, self.string(value, f"the reason for allowing '{name}'"), key.location)
                     for name, (key, value) in self.mapping(raw, "allow").items())
