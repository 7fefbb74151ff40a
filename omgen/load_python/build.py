"""Stage 5 of the Python frontend: the `Spec`, built from the classes read and the bodies rewritten.

Every public method without required mode parameters is a term; each literal
mode call asks for one more; helpers become plain functions that receive what
they read. The module-level sections go through omgen.sections, the rules the
YAML frontend applies too.
"""
from __future__ import annotations

import hashlib
from typing import Any

import libcst as cst

from ..bodies import read_body
from ..errors import Location, SpecErrors, did_you_mean
from ..load_yaml import Library, load_library
from ..model import Block, Code, FunctionDecl, InputDecl, Spec, TermDef
from ..names import INTO, INTO_NAMES, MODULE_MEMBERS, RESERVED
from ..paths import display_path
from ..sections import LIST, NAME, Raw
from ..types import tuple_items
from .modes import literal_args, specialised_name, typed
from .read import REQUIRED, Method, ModuleReader
from .rewrite import Unit, rewrite_body


class Builder:
    """Methods become terms (one per literal mode), helpers become functions; the sections are read by the
    rules both frontends share."""

    def __init__(self, reader: ModuleReader):
        self.r = reader
        self.file = reader.file
        self.errors = reader.errors
        self.rules = reader.file.sections
        self.by_class = {c.class_name: c for c in reader.classes}
        self.definitions: dict[str, list[Method]] = {}  # method name → definitions in file order
        for info in reader.classes:
            for method in info.methods:
                self.definitions.setdefault(method.name, []).append(method)
        self.part_of: dict[str, str] = {}  # part name (from @term(outputs=...)) → the tuple-valued term's method
        for name, methods in self.definitions.items():
            for method in methods:
                for part in method.parts:
                    self.part_of.setdefault(part.name, name)
        self.config = {c.name: c for c in reader.config}
        self.inputs: dict[str, InputDecl] = {}
        self.functions = {f.name: f for f, _ in reader.functions}
        self.library = Library((), (), (), (), ())
        self.includes: tuple[str, ...] = ()  # display paths, as Spec.includes
        self.term_units: dict[tuple[str, tuple], str] = {}  # (method, values) → term name
        self.term_order: list[tuple[str, tuple]] = []
        self.term_values: dict[tuple[str, tuple], tuple] = {}  # key → the mode values
        self.term_defs: dict[tuple[str, tuple], list[TermDef]] = {}
        self.helper_decls: dict[str, FunctionDecl] = {}
        self.helper_extra_names: dict[str, tuple[str, ...]] = {}
        self.helper_in_progress: list[str] = []
        self.helper_form_of: dict[str, str] = {}  # function name → term method, for non-literal calls
        self.parse_cache: dict[int, Any] = {}  # id(method) -> its parsed body (rewrite._parsed)

    def top(self, name: str) -> Raw | None:
        """A module-level assignment's value as a raw tree."""
        node = self.r.top.get(name)
        return self.file.raw(node) if node is not None else None

    # -- what a name is

    def member_kind(self, name: str) -> str | None:
        if name in self.config:
            return "config"
        if name in self.inputs:
            return "input"
        if name in self.definitions:
            return "helper" if self.definitions[name][0].is_helper else "term"
        if name in self.part_of:
            return "part"
        return None

    def member_names(self) -> list[str]:
        return [*self.config, *self.inputs, *self.definitions, *self.part_of]

    def value_kind(self, name: str) -> str | None:
        if name in self.config:
            return "config value"
        if name in self.inputs:
            return "input"
        if name in self.functions:
            return "function"
        if name in self.definitions and not self.definitions[name][0].is_helper or name in self.part_of:
            return "term"
        return None

    def first_definition(self, name: str) -> Method:
        return self.definitions[name][0]

    def value_type(self, name: str) -> str:
        if name in self.config:
            return self.config[name].type
        if name in self.inputs:
            return self.inputs[name].value_type
        for (method, _values), term_name in self.term_units.items():
            if term_name == name:
                return next((d.returns for d in self.definitions[method] if d.returns), "Tensor")
        if name in self.part_of:
            whole = self.definitions[self.part_of[name]]
            part = next(p for d in whole for p in d.parts if p.name == name)
            items = tuple_items(next((d.returns for d in whole if d.returns), None))
            return part.type or (items[part.index] if items and part.index < len(items) else "Tensor")
        return "Tensor"

    # -- terms

    def request_term(self, method: str, values: tuple) -> str:
        key = (method, typed(values))
        if key not in self.term_units:
            self.term_values[key] = values
            definitions = self.definitions[method]
            defaults = tuple(p.default for p in definitions[0].params)
            name = specialised_name(method, values, defaults)
            clash = [k for k, v in self.term_units.items() if v == name]
            if clash:
                self.errors.error(definitions[0].location, f"mode calls {method}{values!r} and "
                                  f"{clash[0][0]}{self.term_values[clash[0]]!r} both specialise to the term name '{name}'",
                                  "use modes that differ in letters or digits")
            self.term_units[key] = name
            self.term_order.append(key)
        return self.term_units[key]

    def helper_form_problem(self, method: str) -> str:
        definitions = self.definitions[method]
        if len(definitions) > 1:
            return "is overridden (" + ", ".join(d.cls.class_name for d in definitions) + \
                ") and so is resolved per variant"
        if "super(" in definitions[0].text:
            return "calls super()"
        if definitions[0].returns is None:
            return "has no return annotation (an unmemoised helper function needs one)"
        untyped = [p.name for p in definitions[0].params if not p.annotated]
        if untyped:
            return f"has parameters without type annotation ({', '.join(untyped)}), which a helper function needs"
        return ""

    def request_helper_form(self, method: str, call: cst.CSTNode, to_location) -> str:
        function = "_" + method
        if function in self.definitions or function in self.functions:
            self.errors.error(to_location(call), f"self.{method}(...) with non-literal arguments becomes the helper "
                              f"function '{function}', but that name is taken", f"rename '{function}'")
        self.helper_form_of[function] = method
        return function

    # -- helpers

    def helper_extras(self, function: str, call: Any, to_location) -> tuple[str, ...]:
        """Terms, inputs and config the helper reads (passed after its own arguments)."""
        if function in self.helper_extra_names:
            return self.helper_extra_names[function]
        if function in self.helper_in_progress:
            chain = " -> ".join(self.helper_in_progress[self.helper_in_progress.index(function):] + [function])
            self.errors.error(to_location(call), f"recursive helper calls: {chain}",
                              "TorchScript functions cannot recurse; write a loop")
            return ()
        method = self.definitions[self.helper_form_of.get(function, function)][0]
        self.helper_in_progress.append(function)
        try:
            code = self.rewrite(Unit(method, None))
        finally:
            self.helper_in_progress.pop()
        extras: tuple[str, ...] = ()
        if code is not None:
            try:
                body = read_body(code, tuple(p.name for p in method.params))
                seen: list[str] = []
                for use in body.free:
                    if use.value not in seen and (use.value in self.config or use.value in self.inputs or
                                                  use.value in self.term_units.values()):
                        seen.append(use.value)
                extras = tuple(seen)
            except SpecErrors as exc:
                self.errors.extend(exc.diagnostics)
            if method.returns is None:
                self.errors.error(method.location, f"helper '{method.name}' needs a return annotation",
                                  "helpers become plain functions: e.g. -> Tensor")
            args = tuple((p.name, p.type) for p in method.params) + tuple((e, self.value_type(e)) for e in extras)
            self.helper_decls[function] = FunctionDecl(function, args, method.returns or "Tensor", method.doc, code,
                                                       method.location)
        self.helper_extra_names[function] = extras
        return extras

    # -- rewriting one body

    def rewrite(self, unit: Unit) -> Code | None:
        return rewrite_body(self, unit)

    # -- everything

    def build(self) -> Spec:
        r, file, errors = self.r, self.file, self.errors
        om = self.rules.om(self.top("om"))
        self.inputs = {decl.name: decl for decl in self.rules.inputs(self.top("inputs"))}
        self._include(self.top("include"))
        self._check_classes()
        self._check_names()
        errors.raise_if_any()

        # terms: every public method without required mode parameters, then the modes calls ask for
        for info in r.classes:
            for method in info.methods:
                if not method.is_helper and all(p.default is not REQUIRED for p in method.params):
                    self.request_term(method.name, tuple(p.default for p in method.params))
        entrypoints = self.rules.entrypoints(self.top("entrypoints"), self._output_term)
        done = 0
        while done < len(self.term_order):
            key = self.term_order[done]
            done += 1
            method_name, values = key[0], self.term_values[key]
            definitions = []
            for method in self.definitions[method_name]:
                bindings = dict(zip((p.name for p in method.params), values))
                code = self.rewrite(Unit(method, bindings, values))
                if code is None:
                    continue
                name = self.term_units[key]
                special = f"{method_name}({', '.join(map(repr, values))})" if method.params else None
                definitions.append(TermDef(name, method.cls.name, code, method.returns, method.shape, method.math,
                                           method.doc, method.is_new, method.location, special,
                                           is_probe=method.is_probe, parts=method.parts,
                                           writes_into=method.writes_into))
            self.term_defs[key] = definitions
        for info in r.classes:  # every helper, called or not (errors, and emitted as functions)
            for method in info.methods:
                if method.is_helper:
                    self.helper_extras(method.name, method.node, lambda node: method.location)
        errors.raise_if_any()

        blocks = []
        rank = {key: index for index, key in enumerate(self.term_order)}
        for info in r.classes:
            if info.kind == "config":
                continue
            order = {m.name: i for i, m in enumerate(info.methods)}
            terms = [d for key in sorted(self.term_defs, key=lambda k: (order.get(k[0], 1 << 30), rank[k]))
                     for d in self.term_defs[key] if d.owner == info.name]
            bases = tuple(self.by_class[b].name if b in self.by_class else b for b, _ in info.bases
                          if b not in self.by_class or self.by_class[b].kind != "config")
            blocks.append(Block(info.name, info.kind, bases, tuple(terms), info.doc, info.location))
        for block in blocks:  # a term named like a config value, input or function
            for term in block.terms:
                if term.name in self.config or term.name in self.inputs or term.name in self.functions:
                    errors.error(term.location, f"term '{term.name}' has the name of a config value, input or function")
        functions = [f for f, _ in r.functions] + list(self.library.functions) + \
            [self.helper_decls[k] for k in self._helper_order()]
        compose = self.rules.compose(self.top("compose"), lambda raw, what: self._class_list(raw, what, "block"))
        variants = self.rules.variants(self.top("variants"), lambda raw, what: self._class_list(raw, what, "mixin"))
        allowances = self.rules.allowances(self.top("allow")) + self.library.allowances
        errors.raise_if_any()
        sources = ((file.display, hashlib.sha256(file.text.encode("utf-8")).hexdigest()),) + self.library.sources
        return Spec(om=om, doc=r.doc, path=file.display, sources=sources,
                    config=tuple(r.config) + self.library.config, inputs=tuple(self.inputs.values()),
                    functions=tuple(functions), blocks=tuple(blocks),
                    compose=tuple(compose), variants=variants, entrypoints=entrypoints,
                    location=Location(file.display, 1, 1), includes=self.includes,
                    allowances=allowances)

    def _helper_order(self) -> list[str]:
        order = []
        for info in self.r.classes:
            for method in info.methods:
                for name in (method.name, "_" + method.name):
                    if name in self.helper_decls and name not in order and (
                            name == method.name and method.is_helper or self.helper_form_of.get(name) == method.name):
                        order.append(name)
        return order

    def _check_classes(self) -> None:
        errors = self.errors
        seen: dict[str, Location] = {}
        for info in self.r.classes:
            for name in {info.name, info.class_name}:
                if name in seen:
                    errors.error(info.location, f"duplicate class or mixin name '{name}'", f"already defined at {seen[name]}")
                seen[name] = info.location
            for base, node in info.bases:
                if base not in self.by_class:
                    errors.error(self.file.loc(node), f"'{info.class_name}' has unknown base '{base}'",
                                 did_you_mean(base, self.by_class) or "bases are classes of this spec")
        for name, definitions in self.definitions.items():
            helpers = {d.is_helper for d in definitions}
            if len(helpers) > 1:
                errors.error(definitions[1].location, f"'{name}' is a helper in one class and a term in another",
                             "mark every definition alike (@no_cache) or rename")
            elif definitions[0].is_helper and len(definitions) > 1:
                errors.error(definitions[1].location, f"helper '{name}' is defined again in "
                             f"'{definitions[1].cls.class_name}' (first in '{definitions[0].cls.class_name}')",
                             "helpers are plain functions and cannot be overridden: make it a term or rename it")
            elif len({tuple(p.name for p in d.params) for d in definitions}) > 1:
                errors.error(definitions[1].location, f"'{name}' takes other mode parameters than in "
                             f"'{definitions[0].cls.class_name}'", "an override keeps the parameters")

    def _check_names(self) -> None:
        errors = self.errors
        seen: dict[str, Location] = {}
        lib = self.library  # first, so that a clash is reported at the spec's own line (what its author edits)
        items = [(c.name, c.location, "config value") for c in lib.config]
        items += [(f.name, f.location, "function") for f in lib.functions]
        items += [(c.name, c.location, "config value") for c in self.r.config]
        items += [(i.name, i.location, "input") for i in self.inputs.values()]
        items += [(f.name, f.location, "function") for f, _ in self.r.functions]
        for name, location, what in items:
            if name in seen:
                hint = f"already defined at {seen[name]}"
                if what == "config value":
                    hint += "; config is global to the spec (declare it once; variants change values)"
                errors.error(location, f"duplicate name '{name}' ({what})", hint)
                continue
            seen[name] = location
            if what != "input":  # inputs were checked as they were read
                self.rules.check_name(location, name, what)
        for name, definitions in self.definitions.items():
            method = definitions[0]
            if name in seen:
                errors.error(method.location, f"method '{name}' has the name of a {seen_kind(items, name)}",
                             f"see {seen[name]}")
            if not method.is_helper and name in INTO_NAMES:
                errors.error(method.location, f"term '{name}' shadows '{name}', which the body of an "
                             f"`{INTO}: true` term reads", "choose another name")
            elif not method.is_helper and (name in MODULE_MEMBERS or name in RESERVED):
                errors.error(method.location, f"term '{name}' would hide the generated module's member '{name}'",
                             "choose another name")

    # -- module-level literals

    def _include(self, raw: Raw | None) -> None:
        """`include = ["common/peaks.yaml", ...]`: YAML spec libraries (paths relative to this file) whose
        functions, config and inputs this spec uses as if declared here."""
        if raw is None:
            return
        file, errors = self.file, self.errors
        wanted = []
        for rel, location in self.rules.strings(raw, "include", "spec file paths", 'e.g. include = ["common/peaks.yaml"]'):
            if not rel.endswith((".yaml", ".yml")):
                errors.error(location, f"include '{rel}' is not a YAML spec library",
                             "a Python spec includes YAML libraries (functions, config, inputs); "
                             "write shared Python classes into this file")
                continue
            wanted.append((rel, location))
        self.includes = tuple(dict.fromkeys(display_path((file.path.parent / rel).resolve(), file.root)
                                            for rel, _ in wanted))  # a file listed twice is read once
        try:
            library = load_library(wanted, file.path.parent, file.root)
        except SpecErrors as exc:
            errors.extend(exc.diagnostics)
            return
        for block in library.blocks:
            errors.error(block.location, f"{block.kind} '{block.name}' of an included library cannot be used by a "
                         f"Python spec (it includes functions, config and inputs)",
                         "write it as a class of the Python spec, or include the library from a YAML spec")
        for decl in library.inputs:
            if decl.name in self.inputs:
                errors.error(self.inputs[decl.name].location, f"duplicate name '{decl.name}' (input)",
                             f"already defined at {decl.location}")
        self.library = library
        self.config.update((c.name, c) for c in library.config)
        self.inputs.update((i.name, i) for i in library.inputs)
        self.functions.update((f.name, f) for f in library.functions)

    def _class_list(self, raw: Raw, what: str, kind: str) -> tuple[str, ...]:
        """A list of classes (by name; a mixin also by its string name)."""
        errors = self.errors
        if raw.kind != LIST:
            errors.error(raw.location, f"{what} must be a list of classes")
            return ()
        by_block_name = {c.name: c for c in self.r.classes}
        result: list[str] = []
        for value in raw.value:
            if value.kind == NAME:
                info, label = self.by_class.get(value.value), value.value
            else:
                label = self.rules.string(value, f"an entry of {what}", strict=True)
                info = by_block_name.get(label)
                if not label:
                    continue
            if info is None:
                errors.error(value.location, f"{what} lists unknown class '{label}'",
                             did_you_mean(label, [*self.by_class, *by_block_name]))
                continue
            if info.kind == "config":
                errors.error(value.location, f"{what} lists '{label}', a config class (only config values)",
                             "its config is global; list blocks and mixins")
                continue
            if kind == "block" and info.kind != "block":
                errors.error(value.location, f"{what} lists '{label}', which is a mixin", "list mixins in a variant")
                continue
            if kind == "mixin" and info.kind != "mixin":
                errors.error(value.location, f"{what} lists '{label}', which is not a mixin",
                             "decorate it with @mixin, or add it to compose")
                continue
            if info.name in result:
                errors.error(value.location, f"{what}: '{label}' is listed twice")
                continue
            result.append(info.name)
        return tuple(result)

    def _output_term(self, raw: Raw, entrypoint: str) -> str | None:
        """'loss' or a mode call "semantic_pred('logits')" (specialised like a call in a body)."""
        text = self.rules.string(raw, f"an output of entrypoint '{entrypoint}'", strict=True)
        if not text:
            return None
        location = raw.location
        try:
            expr = cst.parse_expression(text)
        except cst.ParserSyntaxError:
            self.errors.error(location, f"output '{text}' is not a term name or a mode call")
            return None
        if isinstance(expr, cst.Name):
            return expr.value
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in self.definitions \
                and not self.definitions[expr.func.value][0].is_helper:
            method = self.definitions[expr.func.value][0]
            values = literal_args(expr, method)
            if values is not None:
                return self.request_term(method.name, values)
        self.errors.error(location, f"output '{text}' is not a term name or a mode call with literal arguments",
                          "e.g. 'loss' or \"semantic_pred('logits')\"")
        return None


def seen_kind(items: list[tuple[str, Location, str]], name: str) -> str:
    return next(what for n, _, what in items if n == name)
