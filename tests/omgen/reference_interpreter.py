"""A dynamic reference interpreter of OM specs, in the ModulOM style.

Independent of the compiler: it reads the spec as plain data (the dict a
YAML file holds, not omgen's model classes) and builds real Python classes
at run time, one per block and mixin, with `type(name, bases, namespace)`.
Python's own MRO and `super()` then give the semantics of overrides; the
compiler must agree with them.

Each term definition is a method of the class that defines it. A term's
value is computed lazily, at most once per call (ModulOM: compute once),
by calling the method Python's MRO picks for its name; `super()` in a body
calls the same method on the next class of the MRO (`super(cls, self)`).
Every method call counts one evaluation of `(term, owner)`, so tests can
assert that each term is evaluated exactly once.

Bodies are evaluated with eval/exec (this is test code; the compiler never
executes specs). A body's free names are looked up lazily, in the spec's
order: local, term, input, config value, function, then `torch`, `F`,
`math`, typing names and builtins.
"""
from __future__ import annotations

import ast
import collections
import math
import typing
from typing import Any, Iterable, Mapping

import torch
import torch.nn.functional as F

RESULT = "__reference_result__"


def _code_of(term: Any) -> tuple[str, str]:
    """('expr' | 'body', source) of a term entry (a mapping or the expr shorthand)."""
    if not isinstance(term, Mapping):
        return "expr", str(term)
    if "expr" in term:
        return "expr", str(term["expr"])
    return "body", str(term["body"])


def _compile_body(kind: str, source: str, where: str):
    """A code object; a body's final `return X` becomes an assignment to RESULT."""
    if kind == "expr":
        return "expr", compile(source.strip(), where, "eval")
    module = ast.parse(source, where)
    last = module.body[-1] if module.body else None
    if not isinstance(last, ast.Return) or last.value is None:
        raise NotImplementedError(f"{where}: the reference interpreter needs a body ending in `return value`")
    if any(isinstance(node, ast.Return) for stmt in module.body[:-1] for node in ast.walk(stmt)):
        raise NotImplementedError(f"{where}: the reference interpreter supports a single, final return")
    module.body[-1] = ast.copy_location(ast.Assign([ast.Name(RESULT, ast.Store())], last.value), last)
    return "body", compile(ast.fix_missing_locations(module), where, "exec")


def _uses_super(kind: str, source: str) -> bool:
    tree = ast.parse(source.strip(), mode="eval" if kind == "expr" else "exec")
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
               for node in ast.walk(tree))


class _Names(dict):
    """The local namespace of one body evaluation: lazily resolves terms, inputs and config."""

    def __init__(self, instance: "OMInstance", super_call):
        super().__init__()
        self._instance = instance
        self._super_call = super_call

    def __missing__(self, name: str) -> Any:
        instance = self._instance
        if name == "super":
            return self._super_call
        if name in instance._term_names:
            return instance.value(name)
        if name in instance._input_names:
            return instance.value(name)
        if name in instance._config_names:
            return getattr(instance, name)
        raise KeyError(name)  # eval/exec then look in globals (functions, torch, F, math) and builtins


class OMInstance:
    """Root of every generated class: the lazy, memoised evaluation machinery."""

    _term_names: frozenset = frozenset()
    _input_names: frozenset = frozenset()
    _config_names: frozenset = frozenset()

    def __init__(self, config: Mapping[str, Any]):
        for name, value in config.items():
            setattr(self, name, value)
        self.counts: collections.Counter = collections.Counter()  # (term, owner) -> evaluations this call
        self.inputs_used: set[str] = set()
        self._inputs: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}

    def bind(self, inputs: Mapping[str, Any]) -> None:
        """A new call: new inputs, empty cache, zero counters."""
        self._inputs = dict(inputs)
        self._cache = {}
        self.counts = collections.Counter()
        self.inputs_used = set()

    def value(self, name: str) -> Any:
        """The value of a term or input, computed at most once per bind()."""
        if name in self._input_names:
            self.inputs_used.add(name)
            return self._inputs[name]
        if name not in self._cache:
            if name not in self._term_names:
                raise AttributeError(f"'{type(self).__name__}' has no term '{name}'")
            self._cache[name] = getattr(self, name)()  # the definition Python's MRO picks
        return self._cache[name]

    def evaluate(self, outputs: Iterable[str], inputs: Mapping[str, Any]) -> dict[str, Any]:
        self.bind(inputs)
        return {name: self.value(name) for name in outputs}


def _make_definition(term: str, owner: str, kind: str, code, holder: dict, globals_: dict):
    def definition(self: OMInstance) -> Any:
        self.counts[(term, owner)] += 1
        cls = holder["class"]

        def super_call() -> Any:
            return getattr(super(cls, self), term)()  # the overridden definition: next in the MRO

        names = _Names(self, super_call)
        if kind == "expr":
            return eval(code, globals_, names)  # noqa: S307 (test code: reference semantics)
        exec(code, globals_, names)  # noqa: S102
        return names[RESULT]

    definition.__name__ = term
    definition.__qualname__ = f"{owner}.{term}"
    return definition


class ReferenceOM:
    """The classes of one spec (a plain dict), built with type() and real multiple inheritance."""

    def __init__(self, spec: Mapping[str, Any]):
        self.spec = spec
        self.inputs = dict(spec.get("inputs") or {})
        self.config = {name: decl["default"] for name, decl in (spec.get("config") or {}).items()}
        self.blocks = dict(spec.get("blocks") or {})
        self.mixins = dict(spec.get("mixins") or {})
        self.compose = list(spec["compose"])
        self.entrypoints = {name: list(value["outputs"] if isinstance(value, Mapping) else value)
                            for name, value in (spec.get("entrypoints") or {}).items()}
        variants = spec.get("variants")
        if variants is None:
            variants = {"base": []}
        self.variants: dict[str, tuple[list[str], dict[str, Any]]] = {}
        for name, value in variants.items():
            if isinstance(value, Mapping):
                self.variants[name] = (list(value.get("mixins") or []), dict(value.get("config") or {}))
            else:
                self.variants[name] = (list(value or []), {})
        self.globals: dict[str, Any] = {"torch": torch, "F": F, "math": math, "Tensor": torch.Tensor,
                                        **{n: getattr(typing, n) for n in ("List", "Dict", "Tuple", "Optional")}}
        for name, function in (spec.get("functions") or {}).items():
            args = ", ".join(function.get("args") or {})
            kind, source = _code_of(function)
            body = f"return {source.strip()}" if kind == "expr" else source
            exec(f"def {name}({args}):\n" + "".join(f"    {line}\n" for line in body.splitlines()), self.globals)
        self._classes: dict[str, type] = {}

    # ----------------------------------------------------------------- classes

    def declared(self, name: str) -> Mapping[str, Any]:
        """Terms a block or mixin declares itself."""
        decl = self.blocks.get(name) or self.mixins.get(name) or {}
        return decl.get("terms") or {}

    def is_mixin(self, name: str) -> bool:
        return name in self.mixins

    def class_of(self, name: str) -> type:
        """The class of a block or mixin (its bases first); TypeError like Python on a bad hierarchy."""
        if name in self._classes:
            return self._classes[name]
        decl = self.blocks.get(name, self.mixins.get(name))
        if decl is None:
            raise KeyError(f"unknown block or mixin '{name}'")
        bases = tuple(self.class_of(base) for base in decl.get("bases") or ()) or (OMInstance,)
        holder: dict[str, type] = {}
        namespace: dict[str, Any] = {"__module__": __name__}
        for term, entry in self.declared(name).items():
            kind, source = _code_of(entry)
            code_kind, code = _compile_body(kind, source, f"<{name}.{term}>")
            namespace[term] = _make_definition(term, name, code_kind, code, holder, self.globals)
        cls = type(name, bases, namespace)  # may raise TypeError: Python's own C3
        holder["class"] = cls
        self._classes[name] = cls
        return cls

    def build_all(self) -> None:
        """Create the class of every block and mixin, as a Python module defining them would.

        TypeError when any of them has no consistent MRO, used by a variant or not."""
        for name in [*self.blocks, *self.mixins]:
            self.class_of(name)

    def variant_class(self, variant: str) -> type:
        """type(variant, (mixins..., compose...), {}): TypeError when Python finds no consistent MRO."""
        mixins, _ = self.variants[variant]
        bases = tuple(self.class_of(name) for name in [*mixins, *self.compose])
        terms = frozenset(t for cls in bases for klass in cls.__mro__ for t in self.declared(klass.__name__)
                          if klass.__name__ in self.blocks or klass.__name__ in self.mixins)
        namespace = {"__module__": __name__, "_term_names": terms, "_input_names": frozenset(self.inputs),
                     "_config_names": frozenset(self.config)}
        return type(variant, bases, namespace)

    def mro(self, variant: str) -> list[str]:
        """Blocks and mixins of a variant, highest priority first (Python's MRO)."""
        cls = self.variant_class(variant)
        return [k.__name__ for k in cls.__mro__[1:] if k.__name__ in self.blocks or k.__name__ in self.mixins]

    def chain(self, variant: str, term: str) -> list[str]:
        """Owners of the definitions of `term`, winner first (Python's MRO order)."""
        return [owner for owner in self.mro(variant) if term in self.declared(owner)]

    def instance(self, variant: str, config: Mapping[str, Any] | None = None) -> OMInstance:
        _, variant_config = self.variants[variant]
        values = {**self.config, **variant_config, **(config or {})}
        return self.variant_class(variant)(values)

    # ------------------------------------------------------- static spec rules

    def problems(self, variant: str) -> list[str]:
        """What the spec language forbids beyond Python's own rules (Python would run these).

        - a mixin term without `new: true` must override a definition below it,
          and one with `new: true` must not;
        - `super()` in a reached definition needs a definition below it;
        - entrypoint outputs must be terms of the variant.
        A hierarchy Python refuses raises TypeError from variant_class() instead.
        """
        found = []
        mro = self.mro(variant)
        names = {t for owner in mro for t in self.declared(owner)}
        for term in sorted(names):
            chain = [owner for owner in mro if term in self.declared(owner)]
            for position, owner in enumerate(chain):
                entry = self.declared(owner)[term]
                is_new = isinstance(entry, Mapping) and bool(entry.get("new"))
                below = chain[position + 1:]
                if self.is_mixin(owner) and is_new and below:
                    found.append(f"'{term}' is new in '{owner}' but overrides '{below[0]}'")
                if self.is_mixin(owner) and not is_new and not below:
                    found.append(f"mixin '{owner}' overrides '{term}', which nothing below it defines")
            for position, owner in enumerate(chain):  # reached definitions only
                if not _uses_super(*_code_of(self.declared(owner)[term])):
                    break
                if position + 1 >= len(chain):
                    found.append(f"super() in '{term}' of '{owner}' with no definition below")
        for entrypoint, outputs in self.entrypoints.items():
            for output in outputs:
                if output not in names:
                    found.append(f"entrypoint '{entrypoint}' returns unknown term '{output}'")
        return found
