"""Analysis: bodies → dependencies → the term DAG of one resolved variant.

Every free name of a body is classified (term, input, config, function,
allowed global); `super()` pulls in the overridden definition. Errors are
collected for the whole variant and raised together.
"""
from __future__ import annotations

import dataclasses
import functools
import heapq
from typing import TYPE_CHECKING, Iterable, Mapping

import libcst as cst

if TYPE_CHECKING:
    import networkx as nx

from .names import IMPORTED, INTO, INTO_NAMES, NUMBER_FROM
from .bodies import BodyNames, read_body
from .errors import Diagnostic, ErrorCollector, SpecErrors, did_you_mean
from .model import Spec, TermDef
from .purity import check_allowance, impurities
from .resolve import ResolvedOM, ResolvedTerm

ALLOWED_GLOBALS = IMPORTED  # what the generated module imports (omgen/names.py)
ALLOWED_BUILTINS = frozenset({
    "True", "False", "None", "len", "range", "int", "float", "bool", "str", "min", "max", "abs", "round",
    "enumerate", "zip", "list", "tuple", "dict", "isinstance", "print", "sum", "any", "all", "sorted", "divmod",
    "pow", "hash", "ValueError", "RuntimeError", "AssertionError", "IndexError", "KeyError", "TypeError",
    "NotImplementedError", "Exception", "super",
})


@dataclasses.dataclass(frozen=True)
class DefinitionInfo:
    """One emitted method: a definition with the names its body uses."""

    definition: TermDef
    method: str  # method name in the generated Terms class
    params: tuple[str, ...]  # terms and inputs it takes (its own and those of the super() it calls)
    config: tuple[str, ...]
    functions: tuple[str, ...]
    super_method: str | None  # method reached by super(), if any
    reads_number_from: bool = False  # an `into: true` body that numbers its own values (omgen/names.py)


@dataclasses.dataclass(frozen=True)
class AnalysedTerm:
    term: ResolvedTerm
    definitions: tuple[DefinitionInfo, ...]  # winner, then each definition reached through super()

    @property
    def name(self) -> str:
        return self.term.name

    @property
    def numbers_itself(self) -> bool:
        """The winning body reads `number_from`: a per_image entrypoint that numbers it passes the offset instead
        of renumbering the result."""
        return self.definitions[0].reads_number_from

    @property
    def writes_into(self) -> bool:
        """The winning body takes `into` (a super() below it is called without: one body writes the result)."""
        return self.definitions[0].definition.writes_into

    @property
    def params(self) -> tuple[str, ...]:
        return self.definitions[0].params


@dataclasses.dataclass(frozen=True)
class TermGraph:
    """The term DAG of one variant: terms, their dependencies, and queries over them."""

    om: ResolvedOM
    terms: tuple[AnalysedTerm, ...]  # in a deterministic topological order (declaration order breaks ties)

    @property
    def spec(self) -> Spec:
        return self.om.spec

    @functools.cached_property
    def by_name(self) -> Mapping[str, AnalysedTerm]:
        return {t.name: t for t in self.terms}

    @functools.cached_property
    def _graph(self) -> "nx.DiGraph":
        import networkx as nx  # imported on first query: a plain compile never needs it

        graph = nx.DiGraph()
        graph.add_nodes_from(term.name for term in self.terms)
        graph.add_edges_from((param, term.name) for term in self.terms for param in term.params)
        return graph

    @functools.cached_property
    def _order(self) -> Mapping[str, int]:
        names = [i.name for i in self.spec.inputs] + [t.name for t in self.om.terms]
        return {name: position for position, name in enumerate(names)}

    def dependencies(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(self._graph.predecessors(name), key=self._order.__getitem__))

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(self._graph.successors(name), key=self._order.__getitem__))

    @functools.cached_property
    def _topological(self) -> Mapping[str, int]:
        """Position of every input and term in one topological order: inputs first, then `terms`."""
        names = [i.name for i in self.spec.inputs] + [t.name for t in self.terms]
        return {name: position for position, name in enumerate(names)}

    @functools.cached_property
    def unused(self) -> tuple[AnalysedTerm, ...]:
        """The terms no entrypoint of this variant needs (Session still reaches them), less the declared probes."""
        used: set[str] = set()
        for entrypoint in self.spec.entrypoints:
            used |= set(self.needed_for(entrypoint.outputs))
        return tuple(t for t in self.terms if t.name not in used and not any(d.is_probe for d in t.term.chain))

    @functools.cached_property
    def value_types(self) -> Mapping[str, str]:
        """Declared type of every input and term."""
        types = {i.name: i.value_type for i in self.spec.inputs}
        types.update({t.name: t.term.type for t in self.terms})
        return types

    def needed_for(self, outputs: Iterable[str]) -> tuple[str, ...]:
        """Terms and inputs the outputs need (outputs included), in the graph's topological order."""
        needed: set[str] = set()
        stack = list(outputs)
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                if name in self.by_name:
                    stack.extend(self.by_name[name].params)
        return tuple(sorted(needed, key=self._topological.__getitem__))

    @functools.cached_property
    def used_functions(self) -> tuple[str, ...]:
        """Spec functions the variant's definitions call, directly or through other functions (spec order)."""
        functions = self.spec.functions_by_name
        used: set[str] = set()
        stack = [f for term in self.terms for info in term.definitions for f in info.functions]
        while stack:
            name = stack.pop()
            if name not in used:
                used.add(name)
                function = functions[name]
                body = read_body(function.code, tuple(arg for arg, _ in function.args))
                stack.extend(use.value for use in body.free if use.value in functions)
        return tuple(f.name for f in self.spec.functions if f.name in used)

    def is_input(self, name: str) -> bool:
        return name in self.spec.inputs_by_name


def analyse(om: ResolvedOM) -> TermGraph:
    """Build the term DAG of a resolved variant; SpecErrors on unknown names, cycles, bad super()."""
    errors = ErrorCollector()
    spec = om.spec
    scope = _Scope(spec, om)
    analysed = []
    for term in om.terms:
        definitions = _analyse_term(term, scope, errors)
        if definitions:
            analysed.append(AnalysedTerm(term, definitions))
    errors.raise_if_any()
    order = _topological_order(analysed, errors)
    errors.raise_if_any()
    graph = TermGraph(om, tuple(order))
    _check_entrypoints(graph, errors)
    _check_types(graph, errors)
    errors.raise_if_any()
    return graph


def _topological_order(terms: list[AnalysedTerm], errors: ErrorCollector) -> list[AnalysedTerm]:
    """Kahn's algorithm, always taking the earliest-declared ready term; a cycle is an error showing all of it."""
    position = {t.name: i for i, t in enumerate(terms)}
    waiting = {t.name: sum(1 for p in t.params if p in position) for t in terms}
    users: dict[str, list[str]] = {}
    for term in terms:
        for param in term.params:
            if param in position:
                users.setdefault(param, []).append(term.name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[AnalysedTerm] = []
    while ready:
        term = terms[heapq.heappop(ready)]
        order.append(term)
        for user in users.get(term.name, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, position[user])
    if len(order) < len(terms):
        _report_cycle(terms, errors)
    return order


class _Scope:
    def __init__(self, spec: Spec, om: ResolvedOM):
        self.allowances = allowance_names(spec)
        self.terms = om.terms_by_name
        self.inputs = spec.inputs_by_name
        self.config = om.config
        self.functions = spec.functions_by_name

    def kind(self, name: str) -> str | None:
        if name in self.terms:
            return "term"
        if name in self.inputs:
            return "input"
        if name in self.config:
            return "config"
        if name in self.functions:
            return "function"
        if name in ALLOWED_GLOBALS or name in ALLOWED_BUILTINS:
            return "global"
        return None

    def known(self) -> list[str]:
        return [*self.terms, *self.inputs, *self.config, *self.functions, *ALLOWED_GLOBALS, *ALLOWED_BUILTINS]


def method_name(term: str, definition: TermDef, index: int) -> str:
    return term if index == 0 else f"_{term}__{definition.owner.replace('-', '_')}"


def _analyse_term(term: ResolvedTerm, scope: _Scope, errors: ErrorCollector) -> tuple[DefinitionInfo, ...]:
    """The winning definition and every definition it reaches through super(), innermost last."""
    reached: list[tuple[int, TermDef, BodyNames]] = []
    index = 0
    while True:
        definition = term.chain[index]
        try:
            names = read_body(definition.code, (INTO,) if definition.writes_into else ())
        except SpecErrors as exc:
            errors.extend(exc.diagnostics)
            return ()
        reached.append((index, definition, names))
        if not names.super_calls:
            break
        if index + 1 >= len(term.chain):
            errors.error(names.location(names.super_calls[0]), f"super() in '{term.name}' of "
                         f"'{definition.owner}', but no definition of '{term.name}' lies below it")
            break
        index += 1
    infos: list[DefinitionInfo] = []
    for index, definition, names in reversed(reached):
        infos.append(_definition_info(term, index, definition, names, scope, errors, infos[-1] if infos else None))
    return tuple(reversed(infos))


def _definition_info(term: ResolvedTerm, index: int, definition: TermDef, names: BodyNames, scope: _Scope,
                     errors: ErrorCollector, below: DefinitionInfo | None) -> DefinitionInfo:
    params: list[str] = []
    config: list[str] = []
    functions: list[str] = []
    reads_number_from = False
    for use in names.free:
        name = use.value
        kind = scope.kind(name)
        if kind is None and name == NUMBER_FROM and definition.writes_into:
            reads_number_from = True
        elif kind is None and name in INTO_NAMES:
            errors.error(names.location(use), f"term '{term.name}' reads '{name}' but does not declare `{INTO}: true`",
                         f"add `{INTO}: true` to the term (@term({INTO}=True) in a Python spec)")
        elif kind is None:
            errors.error(names.location(use), f"unknown name '{name}' in term '{term.name}'",
                         did_you_mean(name, scope.known()) or "not a term, input, config value or function")
        elif kind in ("term", "input") and name not in params:
            params.append(name)
        elif kind == "config" and name not in config:
            config.append(name)
        elif kind == "function" and name not in functions:
            functions.append(name)
    for use in names.locals:
        if scope.kind(use.value) in ("term", "input", "config", "function"):
            errors.error(names.location(use), f"local '{use.value}' in term '{term.name}' shadows "
                         f"the {scope.kind(use.value)} of that name", "rename the local")
    for call in names.super_calls:
        if call.args:
            errors.error(names.location(call), "super() takes no arguments here",
                         "write super() for the overridden definition's value")
    for impurity in impurities(names, scope.allowances):
        errors.error(names.location(impurity.node), f"term '{term.name}': {impurity.message}", impurity.hint)
    if not names.returns:
        errors.error(definition.location, f"the body of '{term.name}' never returns a value", "end it with return")
    if definition.writes_into and (term.type != "Tensor" or definition.parts):
        errors.error(definition.location, f"term '{term.name}' declares `{INTO}: true` but is {term.type}",
                     f"only a Tensor term can write its result into a held tensor; drop `{INTO}`")
    if below is not None:
        params += [p for p in below.params if p not in params]
    return DefinitionInfo(definition, method_name(term.name, definition, index), tuple(params), tuple(config),
                          tuple(functions), below.method if below else None, reads_number_from)


def _report_cycle(terms: list[AnalysedTerm], errors: ErrorCollector) -> None:
    import networkx as nx

    graph = nx.DiGraph((param, term.name) for term in terms for param in term.params)
    cycle = [edge[0] for edge in nx.find_cycle(graph)]
    position = {t.name: i for i, t in enumerate(terms)}
    start = cycle.index(min(cycle, key=position.__getitem__))  # begin at the earliest-declared term
    names = cycle[start:] + cycle[:start] + [cycle[start]]
    by_name = {t.name: t for t in terms}
    first = by_name[names[0]].term.winner.location

    def where(name: str) -> str:
        loc = by_name[name].term.winner.location
        return f"line {loc.line}" if loc.file == first.file else str(loc)

    path = " -> ".join(f"{n} ({where(n)})" for n in names)
    errors.error(first, f"dependency cycle: {path}",
                 "a term cannot depend on itself; use super() to reach an overridden definition")


def _check_entrypoints(graph: TermGraph, errors: ErrorCollector) -> None:
    spec = graph.spec
    for entrypoint in spec.entrypoints:
        for output in entrypoint.outputs:
            term = graph.by_name.get(output)
            if term is None:
                hint = "inputs are not outputs" if output in spec.inputs_by_name else did_you_mean(output, graph.by_name)
                errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}' returns unknown term '{output}' "
                             f"in variant '{graph.om.variant.name}'", hint)
            elif term.term.type != "Tensor":
                errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}' returns '{output}' of type "
                             f"{term.term.type}", "entrypoint outputs must be Tensor terms (return Dict[str, Tensor])")
        if entrypoint.per_image:
            _check_per_image(graph, entrypoint, errors)


def _check_per_image(graph: TermGraph, entrypoint, errors: ErrorCollector) -> None:
    """Run one image at a time only where that means something: every tensor input and every output starts
    with the same batch size, so slices of the inputs give the slices of the outputs."""
    spec = graph.spec
    inputs = [spec.inputs_by_name[n] for n in graph.needed_for(entrypoint.outputs) if n in spec.inputs_by_name]
    tensors = [i for i in inputs if i.type == "Tensor"]
    firsts = {i.shape[0] if i.shape else None for i in tensors}
    batch = next(iter(firsts)) if len(firsts) == 1 else None
    if not isinstance(batch, str) or not tensors:
        shapes = ", ".join(f"{i.name} {list(i.shape) if i.shape else 'any'}" for i in tensors) or "no tensor input"
        errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}': per_image needs every tensor input to "
                     f"start with the same batch size ({shapes})", "declare shapes such as [N, C, H, W]")
        return
    rows = set()
    for output in entrypoint.outputs:
        term = graph.by_name.get(output)
        first = term.term.shape[0] if term is not None and term.term.shape else None
        if term is not None and not isinstance(first, str):
            shape = list(term.term.shape) if term.term.shape else "undeclared"
            errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}': per_image needs every output to "
                         f"start with {batch} (one slice per image) or a row size such as M (the images' rows "
                         f"concatenated); '{output}' has shape {shape}", f"declare its shape as [{batch}, ...]")
        elif first is not None and first != batch:
            rows.add(first)
    numbered = {output for output, _ in entrypoint.numbers}
    for output in entrypoint.outputs:
        term = graph.by_name.get(output)
        if term is not None and term.numbers_itself and output not in numbered:
            errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}': '{output}' reads '{NUMBER_FROM}', but "
                         "per_image does not number it (image by image it would count from 0 in every image)",
                         f"add it to per_image numbers, e.g. numbers: {{{output}: M}}")
    for output, size in entrypoint.numbers:
        if output not in entrypoint.outputs:
            errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}': per_image numbers '{output}', "
                         "which is not one of its outputs", did_you_mean(output, entrypoint.outputs))
        elif size != batch and size not in rows:
            known = ", ".join([batch, *sorted(rows)])
            errors.error(entrypoint.location, f"entrypoint '{entrypoint.name}': per_image numbers '{output}' by "
                         f"'{size}', which is neither the batch size nor the rows of an output", f"one of: {known}")


def _check_types(graph: TermGraph, errors: ErrorCollector) -> None:
    """Types meet where a body returns a bare name or a function call: they must agree with the term's type."""
    spec = graph.spec
    types = {c.name: c.type for c in spec.config}
    types.update(graph.value_types)
    returns = {f.name: f.returns for f in spec.functions}
    for term in graph.terms:
        for info in term.definitions:
            body = read_body(info.definition.code)
            for value in body.returned:
                if isinstance(value, cst.Name) and value.value in types:
                    what, found = f"'{value.value}'", types[value.value]
                elif isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in returns:
                    what, found = f"function '{value.func.value}'", returns[value.func.value]
                else:
                    continue
                if found != term.term.type:
                    errors.error(body.location(value), f"'{term.name}' is {term.term.type} but returns {what} of "
                                 f"type {found}", f"declare type: {found}, or convert the value")


def allowance_names(spec: Spec) -> frozenset[str]:
    return frozenset(a.name for a in spec.allowances)


def check_allowances(spec: Spec, errors: ErrorCollector) -> None:
    """An allowance names something that can be allowed at all, with a reason."""
    for allowance in spec.allowances:
        problem = check_allowance(allowance.name)
        if problem:
            errors.error(allowance.location, f"'{allowance.name}' cannot be allowed: {problem}")
        if not allowance.reason.strip():
            errors.error(allowance.location, f"allowance '{allowance.name}' has no reason",
                         "say why the spec needs it: readers of the spec are asked to trust it")


def check_functions(spec: Spec) -> None:
    """Function bodies may use only their arguments, other functions and allowed globals."""
    errors = ErrorCollector()
    check_allowances(spec, errors)
    names = spec.functions_by_name
    for function in spec.functions:
        try:
            body = read_body(function.code, tuple(arg for arg, _ in function.args))
        except SpecErrors as exc:
            errors.extend(exc.diagnostics)
            continue
        for use in body.free:
            if use.value in names or use.value in ALLOWED_GLOBALS or use.value in ALLOWED_BUILTINS - {"super"}:
                continue
            hint = did_you_mean(use.value, [*names, *ALLOWED_GLOBALS, *ALLOWED_BUILTINS])
            if use.value in {t.name for b in spec.blocks for t in b.terms} | set(spec.config_by_name) | set(spec.inputs_by_name):
                hint = "functions are pure: pass the value as an argument"
            errors.error(body.location(use), f"unknown name '{use.value}' in function '{function.name}'", hint)
        for impurity in impurities(body, allowance_names(spec)):
            errors.error(body.location(impurity.node), f"function '{function.name}': {impurity.message}", impurity.hint)
        if not body.returns:
            errors.error(function.location, f"function '{function.name}' never returns", "end it with return")
    errors.raise_if_any()
