"""Purity: every name a body reaches resolves, statically, to the allow-list of pure tensor math.

A body reaches the world through attributes: `torch.save`, `x.numpy().tofile`,
`torch.__builtins__`. So every attribute chain is resolved: a chain rooted at
a module (`torch`, `F`, `math`) must name a member of the allow-list
(omgen/purity_allowlist.json, derived from the installed torch's own
registries by scripts/derive_allowlist.py), and any attribute of any other
value must be a listed tensor/container method. Modules are never values,
names starting with `_` are never reached, and statements that build
classes, import, declare globals or suspend are refused. A spec that needs
more declares it (`allow:`), visibly. The compiler never imports torch: the
list is data, versioned with the torch it came from. docs/security.md
states what this guarantees.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from importlib import metadata
from pathlib import Path
from typing import Iterable, Mapping

import libcst as cst

from .bodies import BodyNames

ALLOWLIST_FILE = Path(__file__).with_name("purity_allowlist.json")

# builtins a body may name (analyse.ALLOWED_BUILTINS) that still act on the world
IMPURE_BUILTINS = {"print": "writes to the console (a side effect); read values through Session instead"}
# never allowed, not even by an allowance: they run strings or reach the interpreter
NEVER_ALLOWED = {
    "eval": "evaluates a string", "exec": "executes a string", "compile": "compiles a string",
    "__import__": "imports a module", "open": "opens a file", "getattr": "reaches any attribute by name",
    "setattr": "writes any attribute by name", "delattr": "deletes any attribute by name",
    "globals": "reaches the module's namespace", "locals": "reaches the frame's namespace",
    "vars": "reaches any object's namespace", "breakpoint": "starts a debugger", "input": "reads the console",
    "type": "builds classes", "object": "reaches every class", "memoryview": "reads raw memory",
}


@dataclasses.dataclass(frozen=True, eq=False)  # identity: one object per list read (a cache key)
class AllowList:
    torch_version: str
    globals: Mapping[str, str]  # body name -> module path (F -> torch.nn.functional)
    module_prefixes: frozenset[str]
    members: frozenset[str]
    value_attributes: frozenset[str]
    denied: Mapping[str, str]  # name -> why (for the message)


@functools.lru_cache(maxsize=1)
def shipped_allowlist() -> AllowList:
    data = json.loads(ALLOWLIST_FILE.read_text(encoding="utf-8"))
    return AllowList(data["torch_version"], dict(data["globals"]), frozenset(data["module_prefixes"]),
                     frozenset(data["members"]), frozenset(data["value_attributes"]), dict(data["denied"]))


def version_note(allow: AllowList) -> str:
    """A note when the installed torch is not the one the list was derived from ('' when it is, or none is)."""
    try:
        installed = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""
    if installed.split("+")[0] == allow.torch_version.split("+")[0]:
        return ""
    return (f"the purity allow-list was derived from torch {allow.torch_version}, torch {installed} is installed "
            "(run scripts/derive_allowlist.py)")


@dataclasses.dataclass(frozen=True)
class Impurity:
    node: cst.CSTNode
    message: str
    hint: str = ""


def check_allowance(name: str) -> str:
    """Why `name` can never be allowed ('' when it can)."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return "an allowance is a dotted name such as torch.cuda.synchronize"
    if any(part.startswith("_") for part in parts):
        return "names starting with '_' reach the interpreter's internals"
    if name in NEVER_ALLOWED:
        return NEVER_ALLOWED[name]
    return ""


def impurities(body: BodyNames, allowances: frozenset[str] = frozenset(),
               allow: AllowList | None = None) -> tuple[Impurity, ...]:
    """Every place the body reaches beyond the allow-list (and its spec's allowances), in source order."""
    return _impurities(body, allowances, allow or shipped_allowlist())


@functools.lru_cache(maxsize=8192)
def _impurities(body: BodyNames, allowances: frozenset[str], allow: AllowList) -> tuple[Impurity, ...]:
    visitor = _PurityVisitor(body, allowances, allow)
    body.function.body.visit(visitor)
    return tuple(visitor.found)


_REFUSED_STATEMENTS = {
    cst.ClassDef: ("a class definition", "bodies compute values; classes are built by the generated module"),
    cst.Import: ("an import", "bodies use torch, F and math only"),
    cst.ImportFrom: ("an import", "bodies use torch, F and math only"),
    cst.Global: ("a global declaration", "bodies write only their own locals"),
    cst.Nonlocal: ("a nonlocal declaration", "bodies write only their own locals"),
    cst.Yield: ("yield", "a term returns its value once"),
    cst.Await: ("await", "terms are not coroutines"),
}


class _PurityVisitor(cst.CSTVisitor):
    def __init__(self, body: BodyNames, allowances: frozenset[str], allow: AllowList):
        self.free = frozenset(id(name) for name in body.free)
        self.allowances = allowances
        self.allow = allow
        self.prefixes = allow.module_prefixes | {name.rsplit(".", k)[0] for name in allowances
                                                for k in range(1, name.count(".") + 1)}
        self.found: list[Impurity] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        refused = _REFUSED_STATEMENTS.get(type(node))
        if refused:
            self.found.append(Impurity(node, f"{refused[0]} in a body is not allowed", refused[1]))
            return False
        if isinstance(node, cst.FunctionDef) and node.asynchronous is not None:
            self.found.append(Impurity(node, "an async function in a body is not allowed", "terms are not coroutines"))
            return False
        return super().on_visit(node)

    def visit_Name(self, node: cst.Name) -> None:
        name = node.value
        if name.startswith("__"):
            self.found.append(Impurity(node, f"'{name}' reaches the interpreter's internals"))
        elif id(node) in self.free and name in self.allow.globals:
            self._module_as_value(node, self.allow.globals[name])
        elif id(node) in self.free and name in IMPURE_BUILTINS and name not in self.allowances:
            self.found.append(Impurity(node, f"'{name}' is not pure: {IMPURE_BUILTINS[name]}",
                                       f"or declare `allow: {{{name}: <reason>}}`"))

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        attributes: list[cst.Attribute] = []
        root: cst.BaseExpression = node
        while isinstance(root, cst.Attribute):
            attributes.append(root)
            root = root.value
        attributes.reverse()  # innermost (first after the root) first
        if isinstance(root, cst.Name) and id(root) in self.free and root.value in self.allow.globals:
            self._module_chain(self.allow.globals[root.value], attributes)
        else:
            root.visit(self)
            self._value_attributes(attributes)
        return False

    def _module_chain(self, dotted: str, attributes: list[cst.Attribute]) -> None:
        leaf = dotted in self.allow.members
        for position, attribute in enumerate(attributes):
            if leaf:
                self._value_attributes(attributes[position:])
                return
            name = f"{dotted}.{attribute.attr.value}"
            if attribute.attr.value.startswith("_"):
                self.found.append(Impurity(attribute, f"'{name}' is not allowed: names starting with '_' reach "
                                           "torch's or Python's internals"))
                return
            if name in self.allow.members or name in self.allowances:
                leaf = True
            elif name not in self.prefixes:
                why = self.allow.denied.get(name) or self.allow.denied.get(attribute.attr.value) \
                    or f"not a pure operation of torch {self.allow.torch_version}'s allow-list"
                self.found.append(Impurity(attribute, f"'{name}' is not allowed: {why}",
                                           f"or declare `allow: {{{name}: <reason>}}` at the top of the spec"))
                return
            dotted = name
        if not leaf:
            self._module_as_value(attributes[-1] if attributes else None, dotted)

    def _module_as_value(self, node: cst.CSTNode | None, dotted: str) -> None:
        if dotted in self.allow.members or dotted in self.allowances:
            return  # Tensor, a type used as a value
        self.found.append(Impurity(node, f"module '{dotted}' used as a value",
                                   "call its functions directly (torch.abs(x)); a module can reach anything"))

    def _value_attributes(self, attributes: Iterable[cst.Attribute]) -> None:
        for attribute in attributes:
            name = attribute.attr.value
            if name in self.allowances or f"Tensor.{name}" in self.allowances:
                continue
            if name.startswith("_"):
                self.found.append(Impurity(attribute, f"attribute '{name}' is not allowed: names starting with '_' "
                                           "reach Python's or torch's internals"))
                return
            if name not in self.allow.value_attributes:
                why = self.allow.denied.get(name) or self.allow.denied.get(f"Tensor.{name}") \
                    or "not a tensor or container method of the allow-list"
                self.found.append(Impurity(attribute, f"attribute '.{name}' is not allowed: {why}",
                                           f"or declare `allow: {{Tensor.{name}: <reason>}}`"))
                return
