"""Stage 4 of the Python frontend: each method body rewritten into the canonical body form, with its lines mapped.

`self.t()` becomes `t`, `self.c` becomes `c`, `super().t()` becomes `super()`,
`self._h(a)` becomes `_h(a, <what _h reads>)`; literal mode calls become the
names of their specialised terms. libcst keeps the body's formatting, and a map
from body lines to file lines keeps every later error at the .py file's line.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import TYPE_CHECKING, Any

import libcst as cst
import libcst.metadata as meta

from ..bodies import NameVisitor
from ..errors import Location, did_you_mean
from ..model import Code
from ..names import INTO, INTO_NAMES
from .modes import UNKNOWN, literal_args, static_value, typed
from .read import DYNAMIC_BUILTINS, REQUIRED, Method

if TYPE_CHECKING:
    from .build import Builder

WRAPPER = "__omgen_method__"


@dataclasses.dataclass
class Unit:
    """One body to rewrite: a term definition (with its mode bindings) or a helper function."""

    method: Method
    bindings: dict[str, Any] | None  # mode parameter → literal value (terms); None for helpers
    values: tuple = ()

    @property
    def is_term(self) -> bool:
        return self.bindings is not None


class _Scan(NameVisitor):
    """Loads and stores (Python's function-scope rule), and the path: every node above a name of interest
    (self, super, a mode parameter, a term, input, config value or function), which the rewrite must visit."""

    def __init__(self, interesting: set[str]):
        super().__init__()
        self.interesting = interesting
        self.stack: list[cst.CSTNode] = []
        self.path: set[cst.CSTNode] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Name) and node.value in self.interesting:
            self.path.update(self.stack)
            self.path.add(node)
        self.stack.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        super().on_leave(original_node)


class BodyRewriter(cst.CSTTransformer):
    """ModulOM body → canonical body: self.t() → t, self.c → c, super().t() → super(), self._h(a) → _h(a, extras)."""

    def __init__(self, builder: "Builder", unit: Unit, to_location, stores: set[str],
                 store_nodes: set[cst.Name], load_nodes: set[cst.Name], path: set[cst.CSTNode]):
        super().__init__()
        self.b, self.unit, self.to_location = builder, unit, to_location
        self.stores, self.store_nodes, self.load_nodes = stores, store_nodes, load_nodes
        self.path = path  # nodes with something to rewrite or check below them; other subtrees are kept as they are
        self.call_funcs: set[cst.CSTNode] = set()
        self.handled_super: set[cst.CSTNode] = set()
        self.allowed_self: set[cst.CSTNode] = set()
        self.elifs: set[cst.CSTNode] = set()
        self.origin: dict[cst.CSTNode, cst.CSTNode] = {}
        self.folded = False

    def error(self, node: cst.CSTNode, message: str, hint: str = "") -> None:
        self.b.errors.error(self.to_location(node), message, hint)

    # -- bookkeeping

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node not in self.path and not isinstance(node, cst.Module):
            return False
        return super().on_visit(node)

    def on_leave(self, original, updated):
        result = super().on_leave(original, updated)
        if isinstance(original, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) and isinstance(result, cst.CSTNode):
            self.origin[result] = original
        return result

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        self.call_funcs.add(func)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call) and isinstance(func.value.func, cst.Name) \
                and func.value.func.value == "super":
            self.handled_super.add(func.value)
        if isinstance(func, cst.Name) and func.value in DYNAMIC_BUILTINS and node.args and \
                isinstance(node.args[0].value, cst.Name) and node.args[0].value.value == "self":
            self.allowed_self.add(node.args[0].value)
            what = {"getattr": "getattr on self with a computed name", "hasattr": "hasattr on self",
                    "setattr": "setattr on self (a method or value assigned at run time)",
                    "delattr": "delattr on self", "vars": "vars(self)", "type": "type(self)"}[func.value]
            self.error(node, f"{what} cannot be resolved statically",
                       "call terms by name (self.center_pred()); to choose between computations, give the method "
                       "a mode parameter and call it with a literal: self.semantic_pred('logits')")

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name) and node.value.value == "self":
            self.allowed_self.add(node.value)

    def visit_If(self, node: cst.If) -> None:
        if isinstance(node.orelse, cst.If):
            self.elifs.add(node.orelse)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._check_store(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check_store(node.target)

    def _check_store(self, target: cst.BaseExpression) -> None:
        targets = target.elements if isinstance(target, (cst.Tuple, cst.List)) else [target]
        for item in targets:
            value = item.value if isinstance(item, cst.BaseElement) else item
            if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name) and value.value.value == "self":
                self.error(value, f"assigning self.{value.attr.value} sets a method or value at run time, "
                           "which cannot be resolved statically",
                           "compute it in a term (a method returning it) and call that term")

    # -- names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        name = original.value
        if name == "self":
            if original not in self.allowed_self:
                self.error(original, "self may only be used as self.<term>(), self.<config> or self.<input>",
                           "the compiler follows named accesses only")
            return updated
        bindings = self.unit.bindings or {}
        if name in self.unit.method.params_names and original in self.store_nodes and self.unit.is_term:
            self.error(original, f"mode parameter '{name}' is reassigned", "modes are compile-time constants")
        if original not in self.load_nodes:
            return updated
        if name in bindings:
            return cst.parse_expression(repr(bindings[name]))
        if name not in self.stores and name not in self.unit.method.params_names:
            kind = self.b.value_kind(name)
            if name in INTO_NAMES:
                self.error(original, f"bare name '{name}': a Python spec reads it as self.{name}",
                           f"write self.{name} (in a @term({INTO}=True) method)")
            elif kind is not None and kind != "function":
                self.error(original, f"bare name '{name}' is a {kind} of the spec",
                           f"write self.{name}()" if kind == "term" else f"write self.{name}")
        return updated

    # -- attributes and calls

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if not (isinstance(original.value, cst.Name) and original.value.value == "self") or original in self.call_funcs:
            return updated
        name = original.attr.value
        if name in INTO_NAMES:
            if self.unit.is_term and self.unit.method.writes_into:
                return cst.Name(name)
            self.error(original, f"self.{name} is read only by a term declared @term({INTO}=True)",
                       f"add {INTO}=True to the @term of '{self.unit.method.name}'" if self.unit.is_term
                       else "a helper takes what it writes into as an argument")
            return updated
        kind = self.b.member_kind(name)
        if kind in ("config", "input"):
            return self._bare(original, name, kind)
        if kind == "term":
            self.error(original, f"term '{name}' is a method: call it, self.{name}()")
        elif kind == "helper":
            self.error(original, f"helper '{name}' is a method: call it, self.{name}(...)")
        else:
            self.error(original, f"unknown member self.{name}",
                       did_you_mean(name, self.b.member_names()) or "not a term, helper, config value or input")
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = original.func
        if isinstance(func, cst.Name) and func.value == "super":
            if original not in self.handled_super:
                self.error(original, "super() must call the overridden method: super().<this method>()",
                           f"write super().{self.unit.method.name}()")
            return updated
        if not isinstance(func, cst.Attribute):
            return updated
        if isinstance(func.value, cst.Call) and isinstance(func.value.func, cst.Name) and func.value.func.value == "super":
            return self._super_call(original, updated)
        if isinstance(func.value, cst.Name) and func.value.value == "self":
            return self._self_call(original, updated)
        return updated

    def _bare(self, original: cst.CSTNode, name: str, kind: str) -> cst.Name:
        """The bare name of a term, input or config value; a local or parameter of that name would hide it."""
        if name in self.stores or name in self.unit.method.params_names:
            what = "parameter" if name in self.unit.method.params_names else "local"
            self.error(original, f"{what} '{name}' of '{self.unit.method.name}' has the name of the {kind} it reads "
                       f"through self", f"rename the {what}: generated code reads the {kind} as '{name}'")
        return cst.Name(name)

    def _super_call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        unit = self.unit
        name = original.func.attr.value  # type: ignore[attr-defined]
        if original.func.value.args:  # type: ignore[attr-defined]
            self.error(original, "super() takes no arguments here", f"write super().{unit.method.name}()")
        if not unit.is_term:
            self.error(original, f"super() in helper '{unit.method.name}': helpers have no overridden definition",
                       "only terms (public methods) can reach the definition they override")
            return updated
        if name != unit.method.name:
            self.error(original, f"super().{name}() in '{unit.method.name}': super() reaches only the overridden "
                       f"definition of the same method", f"write super().{unit.method.name}() or self.{name}()")
            return updated
        values = literal_args(updated, unit.method)
        if values is None or typed(values) != typed(unit.values):
            self.error(original, f"super().{name}(...) must pass the same mode arguments as this definition "
                       f"received ({', '.join(map(repr, unit.values)) or 'none'})",
                       "pass the mode parameters through unchanged")
        return cst.Call(func=cst.Name("super"))

    def _self_call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        name = original.func.attr.value  # type: ignore[attr-defined]
        kind = self.b.member_kind(name)
        if kind in ("config", "input"):
            self.error(original, f"{kind} '{name}' is a value, not a method", f"write self.{name} without ()")
            return updated
        if kind is None:
            self.error(original, f"unknown method self.{name}()",
                       did_you_mean(name, self.b.member_names()) or "not a term or helper of this spec")
            return updated
        if kind == "part":
            whole = self.b.part_of[name]
            if updated.args:
                self.error(original, f"self.{name}() is an output of term '{whole}' and takes no arguments")
                return updated
            self.b.request_term(whole, ())
            return self._bare(original, name, "term")
        method = self.b.first_definition(name)
        if len(updated.args) > len(method.params):
            self.error(original, f"self.{name}() takes {len(method.params)} argument(s), got {len(updated.args)}")
            return updated
        if kind == "term":
            values = literal_args(updated, method)
            if values is not None:
                return self._bare(original, self.b.request_term(name, values), "term")
            if not updated.args:
                missing = [p.name for p in method.params if p.default is REQUIRED]
                self.error(original, f"self.{name}() needs its mode argument(s) {', '.join(missing)}",
                           f"pass literals, e.g. self.{name}('...')")
                return updated
            reason = self.b.helper_form_problem(name)
            if reason:
                if any(a.keyword is not None for a in updated.args) and all(
                        static_value(a.value) is not UNKNOWN for a in updated.args):
                    self.error(original, f"self.{name}(...) passes a mode by keyword, which makes an unmemoised "
                               f"helper call (as in ModulOM), but '{name}' {reason}",
                               "pass modes positionally: a call with literal positional modes is a term")
                else:
                    self.error(original, f"self.{name}(...) has a mode that is not a literal, but '{name}' {reason}",
                               f"pass literal modes (self.{name}('logits')): each literal call is a term of its own")
                return updated
            function = self.b.request_helper_form(name, original, self.to_location)
        else:
            function = name
        return self._helper_call(original, updated, method, function)

    def _helper_call(self, original: cst.Call, updated: cst.Call, method: Method, function: str) -> cst.BaseExpression:
        """`_h(positional..., defaults..., extras...)` with keyword arguments put in place."""
        params = method.params
        slots: list[cst.BaseExpression | None] = [None] * len(params)
        for index, arg in enumerate(updated.args):
            if arg.star:
                self.error(original, "*args and **kwargs in a helper call cannot be resolved statically")
                return updated
            if arg.keyword is None:
                slots[index] = arg.value
            else:
                names = [p.name for p in params]
                if arg.keyword.value not in names:
                    self.error(original, f"{method.name}() has no parameter '{arg.keyword.value}'",
                               did_you_mean(arg.keyword.value, names))
                    return updated
                slots[names.index(arg.keyword.value)] = arg.value
        for index, param in enumerate(params):
            if slots[index] is None:
                if param.default is REQUIRED:
                    self.error(original, f"{method.name}() misses argument '{param.name}'")
                    return updated
                slots[index] = cst.parse_expression(param.default_source)
        extras = self.b.helper_extras(function, original, self.to_location)
        args = [cst.Arg(value) for value in slots] + [cst.Arg(cst.Name(extra)) for extra in extras]  # type: ignore[arg-type]
        # keep the written separators (and line breaks) of the original arguments where there are as many
        if len(updated.args) == len(args) and all(a.keyword is None for a in updated.args):
            args = [arg.with_changes(comma=old.comma) for arg, old in zip(args, updated.args)]
        return cst.Call(func=cst.Name(function), args=args)

    # -- constant folding of mode branches

    def leave_If(self, original: cst.If, updated: cst.If):
        if original in self.elifs:
            return updated
        folded = self._fold(updated)
        if isinstance(folded, cst.If):
            return folded
        self.folded = True
        if not folded:
            return cst.RemovalSentinel.REMOVE
        return cst.FlattenSentinel(folded)

    def _fold(self, node: cst.If) -> cst.If | list:
        value = static_value(node.test)
        if value is UNKNOWN:
            if isinstance(node.orelse, cst.If):
                rest = self._fold(node.orelse)
                if isinstance(rest, list):
                    self.folded = True
                    orelse = cst.Else(body=cst.IndentedBlock(body=rest)) if rest else None
                    return node.with_changes(orelse=orelse)
                return node.with_changes(orelse=rest)
            return node
        if value:
            return self._statements(node.body)
        if node.orelse is None:
            return []
        if isinstance(node.orelse, cst.Else):
            return self._statements(node.orelse.body)
        rest = self._fold(node.orelse)
        return rest

    @staticmethod
    def _statements(suite: cst.BaseSuite) -> list:
        if isinstance(suite, cst.IndentedBlock):
            return list(suite.body)
        return [cst.SimpleStatementLine(body=[s]) for s in suite.body]  # type: ignore[attr-defined]

    def leave_IfExp(self, original: cst.IfExp, updated: cst.IfExp) -> cst.BaseExpression:
        value = static_value(updated.test)
        if value is UNKNOWN:
            return updated
        self.folded = True
        return updated.body if value else updated.orelse

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        """After folding, statements after an unconditional return or raise are unreachable: drop them."""
        if not self.folded:
            return updated
        if not updated.body:
            return updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        kept = []
        for statement in updated.body:
            kept.append(statement)
            if isinstance(statement, cst.SimpleStatementLine) and any(
                    isinstance(s, (cst.Return, cst.Raise)) for s in statement.body):
                break
        return updated.with_changes(body=kept) if len(kept) != len(updated.body) else updated


def rewrite_body(builder: "Builder", unit: Unit) -> Code | None:
    """A method body in the canonical form, with the file line and column of every line of it."""
    method = unit.method
    display = builder.file.display
    parsed = _parsed(builder, method)
    if parsed is None:
        return None
    module, stores_all, loads, path = parsed
    text_map = method.text_map
    positions: dict = {}

    def old_positions():
        if not positions:
            positions.update(meta.MetadataWrapper(module, unsafe_skip_copy=True).resolve(meta.PositionProvider))
        return positions

    def to_location(node: cst.CSTNode) -> Location:
        start = old_positions()[node].start
        line, shift = text_map[min(max(start.line - 2, 0), len(text_map) - 1)]
        return Location(display, line, start.column - 4 + shift + 1)

    params = {p.name for p in method.params}
    stores = {n.value for n in stores_all} - params
    rewriter = BodyRewriter(builder, unit, to_location, stores, set(stores_all), loads, path)
    new_module = module.visit(rewriter)
    lines = new_module.code.split("\n")[1:]
    body_lines = [line[4:] if line.startswith("    ") else line.lstrip(" ") for line in lines]
    while body_lines and not body_lines[-1].strip():
        body_lines.pop()
    source = "\n".join(body_lines) + "\n"
    old_lines = method.text.split("\n")
    if not rewriter.folded and len(body_lines) == len(text_map):
        rows: list = [(i, 0) for i in range(len(body_lines))]
    else:
        rows = _statement_rows(new_module, rewriter, old_positions(), len(text_map), len(body_lines))
    line_map = []
    previous = (text_map[0][0] - 1, text_map[0][1])
    for new_text, row in zip(body_lines, rows):
        if row is None:
            previous = (previous[0] + 1, previous[1])
            line_map.append(previous)
            continue
        index, delta = row
        file_line, text_shift = text_map[index]
        old_text = old_lines[index]
        if new_text == old_text or not new_text.strip():
            entry: tuple = (file_line, text_shift + delta)
        else:  # columns of a rewritten line: anchors where old and new text agree
            anchors: list[int] = []
            for a, b, size in difflib.SequenceMatcher(None, old_text, new_text, autojunk=False).get_matching_blocks():
                if size:
                    anchors += [b, a - b]
            entry = (file_line, text_shift, *anchors)
        previous = entry[:2]
        line_map.append(entry)
    line_map_t = tuple(line_map)
    return Code(source, Location(display, line_map_t[0][0], 0), line_map_t[0][1], line_map=line_map_t)


def _parsed(builder: "Builder", method: Method):
    """The method body parsed once (wrapped in a def), with its stores and loads; None on a syntax error."""
    key = id(method)
    if key not in builder.parse_cache:
        wrapped = f"def {WRAPPER}():\n" + "".join("    " + line + "\n" if line else "\n"
                                                  for line in method.text.split("\n")[:-1])
        try:
            module = cst.parse_module(wrapped)
        except cst.ParserSyntaxError as exc:
            line, col = method.text_map[min(max(exc.raw_line - 2, 0), len(method.text_map) - 1)]
            builder.errors.error(Location(builder.file.display, line, col + 1), f"syntax error in body: {exc.message}")
            builder.parse_cache[key] = None
            return None
        interesting = {"self", "super", *INTO_NAMES, *method.params_names, *builder.config, *builder.inputs,
                       *builder.functions, *(name for name, d in builder.definitions.items() if not d[0].is_helper)}
        names = _Scan(interesting)
        module.visit(names)  # the wrapper def is on the path too (its name is a harmless store)
        builder.parse_cache[key] = (module, tuple(names.stores), set(names.loads), names.path)
    return builder.parse_cache[key]


def _statement_rows(new_module: cst.Module, rewriter: BodyRewriter, old_positions, old_count: int, count: int) -> list:
    """For each new body line: (old text line index, column delta) from the statement it belongs to."""
    new_positions = meta.MetadataWrapper(new_module, unsafe_skip_copy=True).resolve(meta.PositionProvider)
    pairs = [(new_positions[n], old_positions[o]) for n, o in rewriter.origin.items()
             if n in new_positions and o in old_positions and not isinstance(o, cst.Module)]
    pairs = [(new, old) for new, old in pairs if new.start.line > 1]  # not the wrapper def
    pairs.sort(key=lambda p: -(p[0].end.line - p[0].start.line))  # outer statements first, inner ones refine
    rows: list = [None] * count
    for new, old in pairs:
        for line in range(new.start.line, new.end.line + 1):
            body_line = line - 1  # wrapper line 2 is body line 1
            old_line = old.start.line + (line - new.start.line) - 1
            if 1 <= body_line <= count and 1 <= old_line <= old_count:
                rows[body_line - 1] = (old_line - 1, old.start.column - new.start.column)
    return rows
