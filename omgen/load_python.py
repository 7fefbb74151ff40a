"""Python frontend: ModulOM-style classes → `Spec`, read with Python's ast and libcst, never imported or run.

A spec file holds classes deriving from `omgen.OutputMath`. Methods are
terms, `self.term()` is a dependency, `super().term()` the overridden
definition, annotated class attributes are config; `om`, `compose`,
`inputs`, `variants` and `entrypoints` are module-level literals. ModulOM's
run-time cache policy becomes static: helpers (`_name`, `@no_cache`) are
plain functions, literal "mode" calls (`self.semantic_pred('logits')`) are
specialised into terms of their own. Each method body is rewritten into the
canonical body form of the YAML frontend (terms, inputs and config as bare
names, `super()` for the overridden definition), keeping a map from body
lines to file lines so that every later error points at the .py file.
The file's structure, positions and literals come from Python's `ast`
(fast, nothing runs); each method body is rewritten with libcst, which
keeps its formatting.
See docs/python-frontend.md.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import inspect
import keyword
import re
from pathlib import Path
from typing import Any

import libcst as cst
import libcst.metadata as meta

from .bodies import _NameVisitor
from .shapes import ShapeSyntaxError, normalise_dim
from . import limits
from .errors import ErrorCollector, Location, SpecErrors, did_you_mean
from .names import MODULE_MEMBERS, RESERVED, allowed_imports
from .load_yaml import DTYPES, MIXIN_NAME, ROLES, Library, display_path, load_library, project_root
from .model import (TermPart, Allowance, Block, Code, ConfigDecl, EntrypointDecl, FunctionDecl, InputDecl, Spec, TermDef,
                    VariantDecl)
from .types import CONFIG_TYPES, TypeSyntaxError, coerce_config_value, normalise_type, python_value_matches

TOP_NAMES = ("om", "include", "allow", "compose", "inputs", "variants", "entrypoints")
INPUT_KEYS = ("type", "shape", "dtype", "role", "doc")
VARIANT_KEYS = ("mixins", "config", "doc")
ENTRYPOINT_KEYS = ("outputs", "doc")
ALLOWED_IMPORTS = allowed_imports({  # module → names it may bind: the generated module's imports and the markers
    "omgen": {"OutputMath", "omgen", "mixin", "no_cache", "term"},
    "omgen.markers": {"OutputMath", "mixin", "no_cache", "term"}, "__future__": {"annotations"},
})
MARKER_BASE = "OutputMath"
DYNAMIC_BUILTINS = ("getattr", "setattr", "hasattr", "delattr", "vars", "type")
WRAPPER = "__omgen_method__"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # with match(): \Z, not $, which admits a final newline
_UNKNOWN = object()


# ----------------------------------------------------------------------------- reading the file


@dataclasses.dataclass
class Param:
    name: str
    type: str
    default: Any = _UNKNOWN  # literal value, or _UNKNOWN when required
    default_source: str = ""
    annotated: bool = True


@dataclasses.dataclass
class Method:
    cls: "ClassInfo"
    name: str
    node: ast.FunctionDef
    location: Location
    params: list[Param]
    returns: str | None
    doc: str
    is_helper: bool
    shape: tuple | None = None
    math: str | None = None
    is_new: bool = False
    is_probe: bool = False
    parts: tuple = ()  # TermPart, from @term(outputs=...)
    text: str = ""  # the body (docstring removed), dedented
    text_map: tuple[tuple[int, int], ...] = ()  # (file line, column shift) of each line of `text`

    @property
    def where(self) -> str:
        return f"{self.cls.name}.{self.name}"

    @property
    def params_names(self) -> set[str]:
        return {p.name for p in self.params}


@dataclasses.dataclass
class ClassInfo:
    name: str  # block or mixin name (mixins may be renamed by @mixin("name"))
    class_name: str
    kind: str  # "block" | "mixin" | "config" (a class of config values only: a base, not a block)
    bases: list[tuple[str, ast.AST]]  # class names as written
    doc: str
    location: Location
    methods: list[Method] = dataclasses.field(default_factory=list)


class _File:
    """One spec file, parsed with Python's ast (structure and positions; nothing runs); collects errors.

    Method bodies are read again, one by one, with libcst (rewriting keeps their formatting).
    """

    def __init__(self, path: Path, display: str, text: str, errors: ErrorCollector, root: Path):
        self.path, self.display, self.text, self.errors, self.root = path, display, text, errors, root
        self.lines = text.splitlines()
        self.tree = ast.parse(text, filename=display)

    def column(self, line: int, byte_offset: int) -> int:
        """0-based character column of an ast (UTF-8 byte) offset."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))

    def loc(self, node: ast.AST) -> Location:
        return Location(self.display, node.lineno, self.column(node.lineno, node.col_offset) + 1)  # type: ignore

    def name_loc(self, node: ast.FunctionDef | ast.ClassDef) -> Location:
        """Where the name of a def or class is (ast positions point at the keyword)."""
        line = self.lines[node.lineno - 1]
        col = self.column(node.lineno, node.col_offset)
        found = re.compile(rf"\b{re.escape(node.name)}\b").search(line, col)
        return Location(self.display, node.lineno, (found.start() if found else col) + 1)

    def decorator_loc(self, node: ast.AST) -> Location:
        """Where the '@' of a decorator is."""
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        col = self.column(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        at = line.rfind("@", 0, col + 1)
        return Location(self.display, node.lineno, (at if at >= 0 else col) + 1)  # type: ignore[attr-defined]

    def code(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def literal(self, node: ast.AST, what: str) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            self.errors.error(self.loc(node), f"{what} must be a literal (a number, string, list, dict, ...)",
                              "specs are read, never run: no names or calls here")
            return _UNKNOWN

    def string(self, node: ast.AST, what: str) -> str | None:
        value = self.literal(node, what)
        if value is _UNKNOWN:
            return None
        if not isinstance(value, str):
            self.errors.error(self.loc(node), f"{what} must be a string, got {value!r}")
            return None
        return value

    def dict_items(self, node: ast.AST, what: str) -> list[tuple[str, ast.AST, ast.AST]]:
        if not isinstance(node, ast.Dict):
            self.errors.error(self.loc(node), f"{what} must be a dict literal {{'name': ...}}")
            return []
        items, seen = [], {}
        for key_node, value in zip(node.keys, node.values):
            if key_node is None:
                self.errors.error(self.loc(value), f"{what}: '**' is not supported")
                continue
            key = self.string(key_node, f"a key of {what}")
            if key is None:
                continue
            if key in seen:
                self.errors.error(self.loc(key_node), f"duplicate key '{key}' in {what}", f"first at line {seen[key]}")
                continue
            seen[key] = key_node.lineno
            items.append((key, key_node, value))
        return items

    def type_of(self, annotation: ast.AST | None, what: str) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            text = annotation.value
        else:
            text = ast.unparse(annotation)
        try:
            return normalise_type(text)
        except TypeSyntaxError as exc:
            self.errors.error(self.loc(annotation), f"{what}: {exc}")
            return None


def _docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef) -> tuple[str, list[ast.stmt]]:
    doc = ast.get_docstring(node, clean=True)
    return (doc, list(node.body[1:])) if doc is not None else ("", list(node.body))


_LINE_BREAKS_PYTHON_DOES_NOT_SEE = {"\x0b": "vertical tab (U+000B)", "\x0c": "form feed (U+000C)", "\x1c": "file separator (U+001C)",
                                    "\x1d": "group separator (U+001D)", "\x1e": "record separator (U+001E)",
                                    "\x85": "next line (U+0085)", "\u2028": "line separator (U+2028)",
                                    "\u2029": "paragraph separator (U+2029)"}


def _shape(errors: ErrorCollector, file: Any, node: ast.AST, what: str) -> tuple | None:
    """A shape literal, entry by entry through the rule both frontends share (omgen.shapes.normalise_dim)."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        errors.error(file.loc(node), f"{what} must be a list of sizes", "e.g. ['N', 1, 'H', 'W'] or ['N', '2 * k']")
        return None
    dims = []
    for item in node.elts:
        value = file.literal(item, what)
        if value is _UNKNOWN:
            continue
        try:
            dims.append(normalise_dim(value))
        except ShapeSyntaxError as exc:
            errors.error(file.loc(item), f"{what}: {exc}")
    return tuple(dims) if len(dims) == len(node.elts) else None


_PART_KEYS = ("type", "shape", "math", "doc", "probe")


def _parts(errors: ErrorCollector, file: Any, node: ast.AST, term: str) -> tuple:
    """``@term(outputs=[...])``: part names in tuple order, or a dict part name -> {type, shape, math, doc, probe}
    (the YAML frontend's ``outputs``)."""
    if isinstance(node, (ast.List, ast.Tuple)):
        named = [(item, None) for item in node.elts]
    elif isinstance(node, ast.Dict):
        named = list(zip(node.keys, node.values))
    else:
        errors.error(file.loc(node), f"outputs of term '{term}' must be a list of names or a dict",
                     "e.g. outputs=['centers_pred', 'center_scores']")
        return ()
    if not named:
        errors.error(file.loc(node), f"outputs of term '{term}' is empty", "name at least one part")
    parts = []
    for index, (key_node, value_node) in enumerate(named):
        name = file.literal(key_node, f"output {index} of term '{term}'") if key_node is not None else _UNKNOWN
        if not isinstance(name, str) or not IDENTIFIER.match(name) or keyword.iskeyword(name) or name in RESERVED \
                or name in MODULE_MEMBERS or name.startswith("_"):
            if name is not _UNKNOWN:
                errors.error(file.loc(key_node or node), f"output {index} of term '{term}': {name!r} is not a term "
                             "name (an identifier that no generated or torch.nn.Module member uses)")
            continue
        what = f"output '{name}' of term '{term}'"
        fields: dict = {}
        if value_node is not None:
            value = file.literal(value_node, what)
            if value is _UNKNOWN:
                continue
            if not isinstance(value, dict) or not all(isinstance(k, str) and k in _PART_KEYS for k in value):
                errors.error(file.loc(value_node), f"{what} must be a dict of {', '.join(_PART_KEYS)}")
                continue
            fields = value
        type_name = None
        if "type" in fields:
            try:
                type_name = normalise_type(str(fields["type"]))
            except TypeSyntaxError as exc:
                errors.error(file.loc(value_node), f"type of {what}: {exc}")
        shape = None
        if "shape" in fields:
            try:
                shape = tuple(normalise_dim(d) for d in fields["shape"]) if isinstance(fields["shape"], (list, tuple)) \
                    else None
            except ShapeSyntaxError as exc:
                errors.error(file.loc(value_node), f"shape of {what}: {exc}")
            if shape is None and not isinstance(fields["shape"], (list, tuple)):
                errors.error(file.loc(value_node), f"shape of {what} must be a list of sizes")
        for key in ("math", "doc"):
            if key in fields and not isinstance(fields[key], str):
                errors.error(file.loc(value_node), f"{key} of {what} must be a string")
        if "probe" in fields and not isinstance(fields["probe"], bool):
            errors.error(file.loc(value_node), f"{what}: probe is True or False, got {fields['probe']!r}")
        parts.append(TermPart(name, index, type_name, shape, fields.get("math") if isinstance(fields.get("math"), str)
                              else None, fields.get("doc") if isinstance(fields.get("doc"), str) else "",
                              fields.get("probe") is True, file.loc(key_node or node)))
    return tuple(parts)


def _decorator_name(decorator: ast.AST) -> tuple[str, ast.Call | None]:
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    if isinstance(target, ast.Name):
        return target.id, call
    if isinstance(target, ast.Attribute):
        return target.attr, call
    return "", call


def _nested_classes(tree: ast.Module) -> list[tuple[ast.ClassDef, str]]:
    """Classes anywhere but at module level (inside a function, a class or a statement)."""
    found = []

    def walk(node: ast.AST, inside: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                if inside:
                    found.append((child, inside))
                walk(child, "class")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(child, "function")
            elif isinstance(child, ast.stmt) and inside is None:
                walk(child, "statement")
            else:
                walk(child, inside)

    walk(tree, None)
    return found


# ----------------------------------------------------------------------------- the spec being built


class _Reader:
    def __init__(self, file: _File):
        self.file = file
        self.errors = file.errors
        self.doc = ""
        self.top: dict[str, ast.AST] = {}
        self.top_locations: dict[str, Location] = {}
        self.functions: list[tuple[FunctionDecl, ast.FunctionDef]] = []
        self.classes: list[ClassInfo] = []
        self.config: list[ConfigDecl] = []

    # ---- module level

    def read(self) -> None:
        file = self.file
        for node, where in _nested_classes(file.tree):
            inside = {"function": "inside a function", "class": "inside another class",
                      "statement": "inside a statement"}[where]
            self.errors.error(file.name_loc(node), f"class '{node.name}' is defined {inside}",
                              "omgen reads only module-level classes (it never runs the file): move it to the top level")
        self.doc, statements = _docstring(file.tree)
        for statement in statements:
            if isinstance(statement, ast.ClassDef):
                self._class(statement)
            elif isinstance(statement, ast.FunctionDef):
                self._function(statement)
            elif isinstance(statement, (ast.Import, ast.ImportFrom)):
                self._import(statement)
            elif isinstance(statement, ast.Assign):
                self._assign(statement)
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and \
                    isinstance(statement.value.func, ast.Name) and statement.value.func.id in DYNAMIC_BUILTINS:
                self.errors.error(file.loc(statement), f"{statement.value.func.id}() at module level changes classes "
                                  "at run time and cannot be resolved statically",
                                  "define methods with `def` inside the class")
            elif isinstance(statement, ast.AnnAssign):
                self.errors.error(file.loc(statement), "config values are annotated attributes of a class, not "
                                  "module-level", "move it into a class: `threshold: float = 0.5`")
            elif isinstance(statement, (ast.Expr, ast.Pass)) and not isinstance(getattr(statement, "value", None), ast.Call):
                continue  # a string or `...`: nothing to run
            else:
                self.errors.error(file.loc(statement), "only imports, classes, functions and the assignments "
                                  f"{', '.join(TOP_NAMES)} may appear at module level",
                                  "the spec is read, never run: module-level code cannot be followed")

    def _assign(self, node: ast.Assign) -> None:
        file = self.file
        target = node.targets[0]
        if len(node.targets) == 1 and isinstance(target, ast.Name):
            name = target.id
            if name not in TOP_NAMES:
                self.errors.error(file.loc(target), f"unknown module-level name '{name}'",
                                  did_you_mean(name, TOP_NAMES) or f"expected one of: {', '.join(TOP_NAMES)}")
            elif name in self.top:
                self.errors.error(file.loc(target), f"'{name}' is assigned twice",
                                  f"first at line {self.top_locations[name].line}")
            else:
                self.top[name] = node.value
                self.top_locations[name] = file.loc(target)
        elif any(isinstance(t, ast.Attribute) for t in node.targets):
            self.errors.error(file.loc(node), "a method or value assigned at run time "
                              f"('{file.code(target)} = ...') cannot be resolved statically",
                              "define it with `def` inside the class (config: an annotated class attribute)")
        else:
            self.errors.error(file.loc(node), "unsupported assignment at module level",
                              f"module-level assignments are {', '.join(TOP_NAMES)}")

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name not in ALLOWED_IMPORTS or bound not in ALLOWED_IMPORTS[alias.name]:
                    self._bad_import(alias, alias.name)
            return
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.errors.error(self.file.loc(node), f"'from {module} import *' is not supported",
                                  "import names explicitly")
                continue
            bound = alias.asname or alias.name
            if module == "torch.nn" and alias.name == "functional" and bound == "F":
                continue
            if module not in ALLOWED_IMPORTS or alias.name not in ALLOWED_IMPORTS[module] or bound != alias.name:
                self._bad_import(alias, f"{module}.{alias.name}")

    def _bad_import(self, node: ast.AST, what: str) -> None:
        self.errors.error(self.file.loc(node), f"import of '{what}' is not supported",
                          "bodies may use torch, F (torch.nn.functional), math and typing names; "
                          "specs import OutputMath from omgen and mixin/no_cache/term from omgen.markers")

    def _function(self, node: ast.FunctionDef) -> None:
        """A module-level def: a pure function (FunctionDecl)."""
        file = self.file
        name = node.name
        if node.decorator_list:
            self.errors.error(file.decorator_loc(node.decorator_list[0]), f"function '{name}' has a decorator",
                              "module-level functions are plain pure functions")
        params = self._params(node, name, method=False)
        returns = file.type_of(node.returns, f"return type of '{name}'")
        if node.returns is None:
            self.errors.error(file.name_loc(node), f"function '{name}' needs a return annotation", "e.g. -> Tensor")
        doc, statements = _docstring(node)
        text, text_map = self._body_text(node, statements, name)
        if params is None or returns is None or text is None:
            return
        code = Code(text, Location(file.display, text_map[0][0], 0), text_map[0][1], line_map=text_map)
        self.functions.append((FunctionDecl(name, tuple((p.name, p.type) for p in params), returns, doc, code,
                                            file.name_loc(node)), node))

    def _params(self, node: ast.FunctionDef, where: str, method: bool) -> list[Param] | None:
        file = self.file
        args = node.args
        bad = [a for a in (args.vararg, args.kwarg) if a is not None] + list(args.kwonlyargs) + list(args.posonlyargs)
        if bad:
            self.errors.error(file.loc(bad[0]), f"'{where}': *args, **kwargs, keyword-only and positional-only "
                              "parameters are not supported", "use plain parameters")
            return None
        plain = list(args.args)
        defaults: list[ast.AST | None] = [None] * (len(plain) - len(args.defaults)) + list(args.defaults)
        if method:
            if not plain or plain[0].arg != "self":
                self.errors.error(file.name_loc(node), f"method '{where}' must take self first",
                                  "@staticmethod and @classmethod are not supported")
                return None
            plain, defaults = plain[1:], defaults[1:]
        result = []
        for param, default in zip(plain, defaults):
            type_name = file.type_of(param.annotation, f"type of parameter '{param.arg}'") or "Tensor"
            item = Param(param.arg, type_name, annotated=param.annotation is not None)
            if default is not None:
                value = file.literal(default, f"default of parameter '{param.arg}'")
                if value is _UNKNOWN:
                    return None
                item.default, item.default_source = value, file.code(default)
            result.append(item)
        return result

    def _body_text(self, node: ast.FunctionDef, statements: list[ast.stmt], where: str) -> tuple[str | None, tuple]:
        """The body (without docstring) as dedented text, with the file line and column shift of each line."""
        file = self.file
        if not statements:
            self.errors.error(file.name_loc(node), f"'{where}' has no body besides its docstring", "end it with return")
            return None, ()
        first = statements[0]
        if first.lineno == node.lineno:  # def f(self): return x
            text = "".join(file.code(s).strip() + "\n" for s in statements)
            col = file.column(first.lineno, first.col_offset)
            return text, tuple((first.lineno, col) for _ in statements)
        indent = file.column(first.lineno, first.col_offset)
        lines = []
        for line in file.lines[first.lineno - 1:node.end_lineno]:
            strip = len(line) - len(line.lstrip(" "))
            lines.append(line[min(strip, indent):])
        while lines and not lines[-1].strip():
            lines.pop()
        text = "\n".join(lines) + "\n"
        return text, tuple((first.lineno + i, indent) for i in range(len(lines)))

    # ---- classes

    def _class(self, node: ast.ClassDef) -> None:
        file = self.file
        class_name = node.name
        kind, name = "block", class_name
        for decorator in node.decorator_list:
            decorator_name, call = _decorator_name(decorator)
            if decorator_name != "mixin":
                self.errors.error(file.decorator_loc(decorator), f"unknown class decorator on '{class_name}'",
                                  "the only class decorator is @mixin or @mixin(\"name\")")
                continue
            kind = "mixin"
            if call is not None and call.args:
                value = file.string(call.args[0], "the mixin name")
                if value is not None and not MIXIN_NAME.match(value):
                    self.errors.error(file.loc(call.args[0]), f"'{value}' is not a valid mixin name",
                                      "letters, digits, '_' and '-'")
                elif value is not None:
                    name = value
        if node.keywords:
            self.errors.error(file.loc(node.keywords[0]), f"class '{class_name}': metaclass and class keywords are "
                              "not supported", "derive from omgen.OutputMath and the spec's own classes only")
        bases: list[tuple[str, ast.AST]] = []
        marked = False
        for base in node.bases:
            text = ast.unparse(base)
            if text in (MARKER_BASE, f"omgen.{MARKER_BASE}"):
                marked = True
            elif isinstance(base, ast.Name):
                bases.append((base.id, base))
            else:
                self.errors.error(file.loc(base), f"base '{text}' of class '{class_name}' cannot be resolved statically",
                                  "bases are omgen.OutputMath or classes of this spec, by name")
        doc, statements = _docstring(node)
        info = ClassInfo(name, class_name, kind, bases, doc, file.name_loc(node))
        config_before = len(self.config)
        if not bases and not marked:
            self.errors.error(file.name_loc(node), f"class '{class_name}' does not derive from omgen.OutputMath",
                              f"write class {class_name}(OutputMath)")
        for index, statement in enumerate(statements):
            following = statements[index + 1] if index + 1 < len(statements) else None
            if isinstance(statement, ast.FunctionDef):
                method = self._method(info, statement)
                if method:
                    if any(m.name == method.name for m in info.methods):
                        self.errors.error(method.location, f"method '{method.name}' is defined twice in '{class_name}'")
                    info.methods.append(method)
            else:
                self._class_statement(info, statement, following)
        config_classes = {c.class_name for c in self.classes if c.kind == "config"}
        if kind == "block" and not info.methods and len(self.config) > config_before and \
                all(base in config_classes for base, _ in bases):
            info.kind = "config"  # only config values: a common base of the blocks, not a block itself
        self.classes.append(info)

    def _class_statement(self, info: ClassInfo, statement: ast.stmt, following: ast.stmt | None) -> None:
        file = self.file
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            type_name = file.type_of(statement.annotation, f"type of config '{name}'")
            if statement.value is None:
                self.errors.error(file.loc(statement.target), f"config '{name}' needs a default",
                                  f"e.g. {name}: float = 0.5")
                return
            if type_name is None:
                return
            if type_name not in CONFIG_TYPES:
                self.errors.error(file.loc(statement.annotation), f"config '{name}' has type {type_name}",
                                  f"config types are {', '.join(CONFIG_TYPES)}")
                return
            value = file.literal(statement.value, f"default of config '{name}'")
            if value is _UNKNOWN:
                return
            if not python_value_matches(type_name, value):
                self.errors.error(file.loc(statement.value), f"default of config '{name}' is {value!r}, "
                                  f"not a {type_name}")
                return
            doc = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) and \
                    isinstance(following.value.value, str):
                doc = inspect.cleandoc(following.value.value)
            self.config.append(ConfigDecl(name, type_name, coerce_config_value(type_name, value), doc,
                                          file.loc(statement.target)))
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and \
                isinstance(statement.value.value, str):
            pass  # a config attribute's docstring
        elif isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr) and
                                                 isinstance(statement.value, ast.Constant) and
                                                 statement.value.value is Ellipsis):
            pass
        elif isinstance(statement, ast.Assign):
            target = file.code(statement.targets[0])
            if isinstance(statement.value, (ast.Name, ast.Attribute, ast.Call, ast.Lambda)):
                self.errors.error(file.loc(statement), f"'{target} = {file.code(statement.value)}' in class "
                                  f"'{info.class_name}' assigns a method at run time, which cannot be resolved statically",
                                  f"define it with def: def {target}(self): return ...")
            else:
                self.errors.error(file.loc(statement), f"class attribute '{target}' has no type annotation",
                                  f"config values are annotated: {target}: float = ...")
        else:
            self.errors.error(file.loc(statement), f"unsupported statement in class '{info.class_name}'",
                              "a class holds methods (terms, helpers) and annotated config attributes")

    def _method(self, info: ClassInfo, node: ast.FunctionDef) -> Method | None:
        file = self.file
        name = node.name
        where = f"{info.class_name}.{name}"
        if name.startswith("__") and name.endswith("__"):
            self.errors.error(file.name_loc(node), f"special method '{where}' is not supported",
                              "inputs are declared in the module-level `inputs` mapping, config as annotated "
                              "class attributes; terms are plain methods")
            return None
        is_helper = name.startswith("_")
        shape = math = None
        is_new = is_probe = False
        parts: tuple = ()
        for decorator in node.decorator_list:
            decorator_name, call = _decorator_name(decorator)
            if decorator_name == "no_cache":
                if call is not None and (call.args or call.keywords):
                    self.errors.error(file.decorator_loc(decorator), "@no_cache with a condition is decided at run "
                                      "time", "use @no_cache without arguments (always a helper)")
                is_helper = True
            elif decorator_name == "term":
                for arg in call.args if call else ():
                    self.errors.error(file.loc(arg), "@term takes keyword arguments: shape=, math=, new=")
                for keyword_ in call.keywords if call else ():
                    key, value_node = keyword_.arg, keyword_.value
                    if key == "shape":
                        shape = _shape(self.errors, file, value_node, f"shape of term '{name}'")
                    elif key == "math":
                        math = file.string(value_node, "math")
                    elif key == "new":
                        value = file.literal(value_node, "new")
                        is_new = bool(value) if value is not _UNKNOWN else False
                        if info.kind != "mixin":
                            self.errors.error(file.loc(keyword_), "new=True is only for mixin terms (a block term is "
                                              "always new)")
                    elif key == "outputs":
                        parts = _parts(self.errors, file, value_node, name)
                    elif key == "probe":
                        value = file.literal(value_node, "probe")
                        if value is not _UNKNOWN and not isinstance(value, bool):
                            self.errors.error(file.loc(value_node), f"probe= is True or False, got {value!r}")
                        is_probe = value is True
                    else:
                        self.errors.error(file.loc(keyword_), "@term takes shape=, math=, new=, probe= and outputs=",
                                          did_you_mean(key or "", ("shape", "math", "new", "probe", "outputs")))
            else:
                hint = "a term is a plain method: self.x() calls it" if decorator_name == "property" else \
                    "method decorators are @term(...) and @no_cache"
                self.errors.error(file.decorator_loc(decorator), f"unsupported decorator @{decorator_name or '...'} "
                                  f"on '{where}'", hint)
        params = self._params(node, where, method=True)
        returns = file.type_of(node.returns, f"return type of '{where}'")
        doc, statements = _docstring(node)
        text, text_map = self._body_text(node, statements, where)
        if params is None or text is None:
            return None
        return Method(info, name, node, file.name_loc(node), params, returns, doc, is_helper, shape, math, is_new,
                      is_probe, parts, text, text_map)


# ----------------------------------------------------------------------------- static evaluation


def _static(node: cst.BaseExpression) -> Any:
    """The value of an expression made of literals, comparisons, not/and/or; _UNKNOWN otherwise."""
    if isinstance(node, cst.Name):
        return {"True": True, "False": False, "None": None}.get(node.value, _UNKNOWN)
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float, cst.Tuple, cst.List,
                         cst.Set, cst.UnaryOperation)) and not (isinstance(node, cst.UnaryOperation)
                                                               and isinstance(node.operator, cst.Not)):
        try:
            return ast.literal_eval(cst.Module([]).code_for_node(node).strip())
        except (ValueError, SyntaxError, TypeError):
            return _UNKNOWN
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        value = _static(node.expression)
        return _UNKNOWN if value is _UNKNOWN else (not value)
    if isinstance(node, cst.BooleanOperation):
        left, right = _static(node.left), _static(node.right)
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        return (left and right) if isinstance(node.operator, cst.And) else (left or right)
    if isinstance(node, cst.Comparison):
        left = _static(node.left)
        if left is _UNKNOWN:
            return _UNKNOWN
        ops = {cst.Equal: lambda a, b: a == b, cst.NotEqual: lambda a, b: a != b, cst.In: lambda a, b: a in b,
               cst.NotIn: lambda a, b: a not in b, cst.Is: lambda a, b: a is b, cst.IsNot: lambda a, b: a is not b,
               cst.LessThan: lambda a, b: a < b, cst.LessThanEqual: lambda a, b: a <= b,
               cst.GreaterThan: lambda a, b: a > b, cst.GreaterThanEqual: lambda a, b: a >= b}
        for target in node.comparisons:
            right = _static(target.comparator)
            op = ops.get(type(target.operator))
            if right is _UNKNOWN or op is None:
                return _UNKNOWN
            try:
                if not op(left, right):
                    return False
            except TypeError:
                return _UNKNOWN
            left = right
        return True
    return _UNKNOWN


def _typed(values: tuple) -> tuple:
    """Mode values compared with their types (1, 1.0 and True are three modes)."""
    return tuple((type(v).__name__, v) for v in values)


def _is_mode_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def specialised_name(method: str, values: tuple, defaults: tuple) -> str:
    """`semantic_pred` for the defaults, else `semantic_pred__logits` (one `__part` per argument)."""
    if _typed(values) == _typed(defaults):
        return method
    parts = []
    for value in values:
        if isinstance(value, bool) or value is None:
            parts.append(str(value))
        elif isinstance(value, int):
            parts.append(str(value) if value >= 0 else f"m{-value}")
        elif isinstance(value, float):
            parts.append(repr(value).replace("-", "m").replace(".", "p").replace("+", ""))
        else:
            parts.append(re.sub(r"[^A-Za-z0-9_]", "_", value) or "empty")
    return method + "__" + "__".join(parts)


# ----------------------------------------------------------------------------- body rewriting


@dataclasses.dataclass
class _Unit:
    """One body to rewrite: a term definition (with its mode bindings) or a helper function."""

    method: Method
    bindings: dict[str, Any] | None  # mode parameter → literal value (terms); None for helpers
    values: tuple = ()

    @property
    def is_term(self) -> bool:
        return self.bindings is not None


class _Scan(_NameVisitor):
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


class _Rewriter(cst.CSTTransformer):
    """ModulOM body → canonical body: self.t() → t, self.c → c, super().t() → super(), self._h(a) → _h(a, extras)."""

    def __init__(self, builder: "_Builder", unit: _Unit, to_location, stores: set[str],
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
            if kind is not None and kind != "function":
                self.error(original, f"bare name '{name}' is a {kind} of the spec",
                           f"write self.{name}()" if kind == "term" else f"write self.{name}")
        return updated

    # -- attributes and calls

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if not (isinstance(original.value, cst.Name) and original.value.value == "self") or original in self.call_funcs:
            return updated
        name = original.attr.value
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
        values = self._literal_args(updated, unit.method)
        if values is None or _typed(values) != _typed(unit.values):
            self.error(original, f"super().{name}(...) must pass the same mode arguments as this definition "
                       f"received ({', '.join(map(repr, unit.values)) or 'none'})",
                       "pass the mode parameters through unchanged")
        return cst.Call(func=cst.Name("super"))

    @staticmethod
    def _literal_args(call: cst.Call, method: "Method") -> tuple | None:
        """The full argument tuple (defaults filled in) of a call with only literal positional arguments."""
        values = []
        for arg in call.args:
            if arg.keyword is not None or arg.star:
                return None
            value = _static(arg.value)
            if value is _UNKNOWN or not _is_mode_value(value):
                return None
            values.append(value)
        params = method.params
        if len(values) > len(params):
            return None
        for param in params[len(values):]:
            if param.default is _UNKNOWN:
                return None
            values.append(param.default)
        return tuple(values)

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
            values = self._literal_args(updated, method)
            if values is not None:
                return self._bare(original, self.b.request_term(name, values), "term")
            if not updated.args:
                missing = [p.name for p in method.params if p.default is _UNKNOWN]
                self.error(original, f"self.{name}() needs its mode argument(s) {', '.join(missing)}",
                           f"pass literals, e.g. self.{name}('...')")
                return updated
            reason = self.b.helper_form_problem(name)
            if reason:
                if any(a.keyword is not None for a in updated.args) and all(
                        _static(a.value) is not _UNKNOWN for a in updated.args):
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
                if param.default is _UNKNOWN:
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
        value = _static(node.test)
        if value is _UNKNOWN:
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
        value = _static(updated.test)
        if value is _UNKNOWN:
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


# ----------------------------------------------------------------------------- building the Spec


class _Builder:
    def __init__(self, reader: _Reader):
        self.r = reader
        self.file = reader.file
        self.errors = reader.errors
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
        self._parse_cache: dict[int, Any] = {}

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
            return self.inputs[name].type
        for (method, _values), term_name in self.term_units.items():
            if term_name == name:
                return next((d.returns for d in self.definitions[method] if d.returns), "Tensor")
        if name in self.part_of:
            from .types import tuple_items

            whole = self.definitions[self.part_of[name]]
            part = next(p for d in whole for p in d.parts if p.name == name)
            items = tuple_items(next((d.returns for d in whole if d.returns), None))
            return part.type or (items[part.index] if items and part.index < len(items) else "Tensor")
        return "Tensor"

    # -- terms

    def request_term(self, method: str, values: tuple) -> str:
        key = (method, _typed(values))
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
            code = self.rewrite(_Unit(method, None))
        finally:
            self.helper_in_progress.pop()
        extras: tuple[str, ...] = ()
        if code is not None:
            from .bodies import read_body
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

    def rewrite(self, unit: _Unit) -> Code | None:
        method = unit.method
        display = self.file.display
        parsed = self._parsed(method)
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
        rewriter = _Rewriter(self, unit, to_location, stores, set(stores_all), loads, path)
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
            rows = self._statement_rows(new_module, rewriter, old_positions(), len(text_map), len(body_lines))
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

    def _parsed(self, method: Method):
        """The method body parsed once (wrapped in a def), with its stores and loads; None on a syntax error."""
        key = id(method)
        if key not in self._parse_cache:
            wrapped = f"def {WRAPPER}():\n" + "".join("    " + line + "\n" if line else "\n"
                                                      for line in method.text.split("\n")[:-1])
            try:
                module = cst.parse_module(wrapped)
            except cst.ParserSyntaxError as exc:
                line, col = method.text_map[min(max(exc.raw_line - 2, 0), len(method.text_map) - 1)]
                self.errors.error(Location(self.file.display, line, col + 1), f"syntax error in body: {exc.message}")
                self._parse_cache[key] = None
                return None
            interesting = {"self", "super", *method.params_names, *self.config, *self.inputs, *self.functions,
                           *(name for name, d in self.definitions.items() if not d[0].is_helper)}
            names = _Scan(interesting)
            module.visit(names)  # the wrapper def is on the path too (its name is a harmless store)
            self._parse_cache[key] = (module, tuple(names.stores), set(names.loads), names.path)
        return self._parse_cache[key]

    @staticmethod
    def _statement_rows(new_module: cst.Module, rewriter: _Rewriter, old_positions, old_count: int, count: int) -> list:
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

    # -- everything

    def build(self) -> Spec:
        r, file, errors = self.r, self.file, self.errors
        top = r.top
        om = file.string(top["om"], "om") if "om" in top else None
        if "om" not in top:
            errors.error(Location(file.display, 1, 1), "missing `om = \"...\"` (the module name of the OM)")
        elif om is not None and (not IDENTIFIER.match(om) or keyword.iskeyword(om)):
            errors.error(file.loc(top["om"]), f"om '{om}' must be a Python identifier")
        self.inputs = self._inputs(top.get("inputs"))
        self._include(top.get("include"))
        self._check_classes()
        self._check_names()
        errors.raise_if_any()

        # terms: every public method without required mode parameters, then the modes calls ask for
        for info in r.classes:
            for method in info.methods:
                if not method.is_helper and all(p.default is not _UNKNOWN for p in method.params):
                    self.request_term(method.name, tuple(p.default for p in method.params))
        entrypoints = self._entrypoints(top.get("entrypoints"))
        done = 0
        while done < len(self.term_order):
            key = self.term_order[done]
            done += 1
            method_name, values = key[0], self.term_values[key]
            definitions = []
            for method in self.definitions[method_name]:
                bindings = dict(zip((p.name for p in method.params), values))
                code = self.rewrite(_Unit(method, bindings, values))
                if code is None:
                    continue
                name = self.term_units[key]
                special = f"{method_name}({', '.join(map(repr, values))})" if method.params else None
                definitions.append(TermDef(name, method.cls.name, code, method.returns, method.shape, method.math,
                                           method.doc, method.is_new, method.location, special,
                                           is_probe=method.is_probe, parts=method.parts))
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
        compose = self._class_list(top.get("compose"), "compose", kind="block") if "compose" in top else ()
        if "compose" not in top:
            errors.error(Location(file.display, 1, 1), "missing `compose = [...]` (the blocks of the base OM)")
        variants = self._variants(top.get("variants"))
        allowances = self._allow(top.get("allow")) + self.library.allowances
        errors.raise_if_any()
        sources = ((file.display, hashlib.sha256(file.text.encode("utf-8")).hexdigest()),) + self.library.sources
        return Spec(om=om or "", doc=r.doc, path=file.display, sources=sources,
                    config=tuple(r.config) + self.library.config, inputs=tuple(self.inputs.values()),
                    functions=tuple(functions), blocks=tuple(blocks),
                    compose=tuple(compose), variants=variants, entrypoints=entrypoints,
                    location=Location(file.display, 1, 1), includes=self.includes,
                    allowances=allowances)

    def _allow(self, node: ast.AST | None) -> tuple[Allowance, ...]:
        """`allow = {"torch.cuda.synchronize": "why"}`: exceptions to the purity check, with reasons."""
        if node is None:
            return ()
        if not isinstance(node, ast.Dict) or any(k is None for k in node.keys):
            self.errors.error(self.file.loc(node), "allow must be a dict of name -> reason",
                              'e.g. allow = {"torch.cuda.synchronize": "timing probe"}')
            return ()
        found = []
        for key, value in zip(node.keys, node.values):
            name = self.file.string(key, "an allowed name")
            reason = self.file.string(value, f"the reason for allowing '{name}'")
            if name is not None:
                found.append(Allowance(name, reason or "", self.file.loc(key)))
        return tuple(found)

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
            if name in RESERVED or keyword.iskeyword(name):
                errors.error(location, f"{what} '{name}' shadows the global '{name}' that bodies use")
            elif what == "config value" and (name in MODULE_MEMBERS or name.startswith("_")):
                errors.error(location, f"config value '{name}' would hide the generated module's member '{name}'",
                             "choose another name")
        for name, definitions in self.definitions.items():
            method = definitions[0]
            if name in seen:
                errors.error(method.location, f"method '{name}' has the name of a {seen_kind(items, name)}",
                             f"see {seen[name]}")
            if not method.is_helper and (name in MODULE_MEMBERS or name in RESERVED):
                errors.error(method.location, f"term '{name}' would hide the generated module's member '{name}'",
                             "choose another name")

    # -- module-level literals

    def _include(self, node: ast.AST | None) -> None:
        """`include = ["common/peaks.yaml", ...]`: YAML spec libraries (paths relative to this file) whose
        functions, config and inputs this spec uses as if declared here."""
        if node is None:
            return
        file, errors = self.file, self.errors
        if not isinstance(node, (ast.List, ast.Tuple)):
            errors.error(file.loc(node), "include must be a list of spec file paths", 'e.g. include = ["common/peaks.yaml"]')
            return
        wanted = []
        for item in node.elts:
            rel = file.string(item, "an include entry")
            if rel is None:
                continue
            if not rel.endswith((".yaml", ".yml")):
                errors.error(file.loc(item), f"include '{rel}' is not a YAML spec library",
                             "a Python spec includes YAML libraries (functions, config, inputs); "
                             "write shared Python classes into this file")
                continue
            wanted.append((rel, file.loc(item)))
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

    def _inputs(self, node: ast.AST | None) -> dict[str, InputDecl]:
        file, errors = self.file, self.errors
        result: dict[str, InputDecl] = {}
        for name, key, value in (file.dict_items(node, "inputs") if node is not None else []):
            location = file.loc(key)
            if not IDENTIFIER.match(name):
                errors.error(location, f"input '{name}' is not a Python identifier")
                continue
            fields = {k: (kn, v) for k, kn, v in file.dict_items(value, f"input '{name}'")}
            for field, (kn, _) in fields.items():
                if field not in INPUT_KEYS:
                    errors.error(file.loc(kn), f"unknown key '{field}' in input '{name}'",
                                 did_you_mean(field, INPUT_KEYS) or f"expected one of: {', '.join(INPUT_KEYS)}")
            type_name = "Tensor"
            if "type" in fields:
                text = file.string(fields["type"][1], "type")
                try:
                    type_name = normalise_type(text) if text else "Tensor"
                except TypeSyntaxError as exc:
                    errors.error(file.loc(fields["type"][1]), f"type of input '{name}': {exc}")
            shape = None
            if "shape" in fields:
                shape = _shape(errors, file, fields["shape"][1], f"shape of input '{name}'")
            dtype = file.string(fields["dtype"][1], "dtype") if "dtype" in fields else "any"
            if dtype is not None and dtype not in DTYPES:
                errors.error(file.loc(fields["dtype"][1]), f"input '{name}': unknown dtype '{dtype}'",
                             did_you_mean(dtype, DTYPES) or f"expected one of {', '.join(DTYPES)}")
            role = file.string(fields["role"][1], "role") if "role" in fields else "other"
            if role is not None and role not in ROLES:
                errors.error(file.loc(fields["role"][1]), f"input '{name}': unknown role '{role}'",
                             did_you_mean(role, ROLES) or f"expected one of {', '.join(ROLES)}")
            doc = (file.string(fields["doc"][1], "doc") or "") if "doc" in fields else ""
            result[name] = InputDecl(name, type_name, shape, dtype or "any", role or "other", doc, location)
        return result

    def _class_list(self, node: ast.AST, what: str, kind: str | None) -> tuple[str, ...]:
        """A list of classes (by name; a mixin also by its string name)."""
        file, errors = self.file, self.errors
        if not isinstance(node, (ast.List, ast.Tuple)):
            errors.error(file.loc(node), f"{what} must be a list of classes")
            return ()
        by_block_name = {c.name: c for c in self.r.classes}
        result = []
        for value in node.elts:
            info = None
            if isinstance(value, ast.Name):
                info = self.by_class.get(value.id)
                label = value.id
            else:
                label = file.string(value, f"an entry of {what}") or ""
                info = by_block_name.get(label)
            if info is None:
                errors.error(file.loc(value), f"{what} lists unknown class '{label}'",
                             did_you_mean(label, [*self.by_class, *by_block_name]))
                continue
            if info.kind == "config":
                errors.error(file.loc(value), f"{what} lists '{label}', a config class (only config values)",
                             "its config is global; list blocks and mixins")
                continue
            if kind == "block" and info.kind != "block":
                errors.error(file.loc(value), f"{what} lists '{label}', which is a mixin", "list mixins in a variant")
                continue
            if kind == "mixin" and info.kind != "mixin":
                errors.error(file.loc(value), f"{what} lists '{label}', which is not a mixin",
                             "decorate it with @mixin, or add it to compose")
                continue
            if info.name in result:
                errors.error(file.loc(value), f"{what}: '{label}' is listed twice")
                continue
            result.append(info.name)
        return tuple(result)

    def _variants(self, node: ast.AST | None) -> tuple[VariantDecl, ...]:
        file, errors = self.file, self.errors
        if node is None:
            return (VariantDecl("base", (), (), "", Location(file.display, 1, 1)),)
        variants = []
        for name, key, value in file.dict_items(node, "variants"):
            location = file.loc(key)
            if not MIXIN_NAME.match(name):
                errors.error(location, f"variant name '{name}' must be letters, digits, '_' or '-'")
                continue
            if isinstance(value, (ast.List, ast.Tuple)):
                variants.append(VariantDecl(name, self._class_list(value, f"mixins of variant '{name}'", "mixin"), (),
                                            "", location))
                continue
            fields = {k: (kn, v) for k, kn, v in file.dict_items(value, f"variant '{name}'")}
            for field, (kn, _) in fields.items():
                if field not in VARIANT_KEYS:
                    errors.error(file.loc(kn), f"unknown key '{field}' in variant '{name}'",
                                 did_you_mean(field, VARIANT_KEYS) or f"expected one of: {', '.join(VARIANT_KEYS)}")
            mixins = self._class_list(fields["mixins"][1], f"mixins of variant '{name}'", "mixin") \
                if "mixins" in fields else ()
            overrides = []
            if "config" in fields:
                for ck, ckn, cv in file.dict_items(fields["config"][1], f"config of variant '{name}'"):
                    value_ = file.literal(cv, f"config '{ck}'")
                    if value_ is not _UNKNOWN:
                        overrides.append((ck, value_, file.loc(ckn)))
            doc = (file.string(fields["doc"][1], "doc") or "") if "doc" in fields else ""
            variants.append(VariantDecl(name, mixins, tuple(overrides), doc, location))
        return tuple(variants)

    def _entrypoints(self, node: ast.AST | None) -> tuple[EntrypointDecl, ...]:
        file, errors = self.file, self.errors
        if node is None:
            errors.error(Location(file.display, 1, 1), "missing `entrypoints = {...}` (which terms each module returns)")
            return ()
        result = []
        for name, key, value in file.dict_items(node, "entrypoints"):
            location = file.loc(key)
            if not IDENTIFIER.match(name):
                errors.error(location, f"entrypoint name '{name}' must be a Python identifier")
                continue
            doc = ""
            if isinstance(value, ast.Dict):
                fields = {k: (kn, v) for k, kn, v in file.dict_items(value, f"entrypoint '{name}'")}
                for field, (kn, _) in fields.items():
                    if field not in ENTRYPOINT_KEYS:
                        errors.error(file.loc(kn), f"unknown key '{field}' in entrypoint '{name}'",
                                     did_you_mean(field, ENTRYPOINT_KEYS))
                doc = (file.string(fields["doc"][1], "doc") or "") if "doc" in fields else ""
                value = fields["outputs"][1] if "outputs" in fields else ast.List([])
            outputs = []
            if not isinstance(value, (ast.List, ast.Tuple)):
                errors.error(file.loc(value), f"outputs of entrypoint '{name}' must be a list of term names")
                value = ast.List([])
            for element in value.elts:  # type: ignore[attr-defined]
                text = file.string(element, f"an output of entrypoint '{name}'")
                if text is None:
                    continue
                output = self._output_term(text, file.loc(element))
                if output and output not in outputs:
                    outputs.append(output)
            if not outputs:
                errors.error(location, f"entrypoint '{name}' has no outputs")
            result.append(EntrypointDecl(name, tuple(outputs), doc, location))
        return tuple(result)

    def _output_term(self, text: str, location: Location) -> str | None:
        """'loss' or a mode call "semantic_pred('logits')" (specialised like a call in a body)."""
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
            values = _Rewriter._literal_args(expr, method)
            if values is not None:
                return self.request_term(method.name, values)
        self.errors.error(location, f"output '{text}' is not a term name or a mode call with literal arguments",
                          "e.g. 'loss' or \"semantic_pred('logits')\"")
        return None


def seen_kind(items: list[tuple[str, Location, str]], name: str) -> str:
    return next(what for n, _, what in items if n == name)


def load_spec(path: str | Path, display_root: Path | None = None) -> Spec:
    """Parse a Python spec into a Spec, or raise SpecErrors; the file is never imported or run."""
    path = Path(path)
    root = display_root or project_root(path)
    display = display_path(path, root)
    text, data = limits.read_text(path, display)
    too_deep = limits.check_python_nesting(text)
    if too_deep:  # before ast and libcst, whose parsers and visitors recurse
        line, col, what = too_deep
        raise SpecErrors.single(Location(display, line, col + 1), f"spec too complex: {what}",
                                "split it into terms or functions")
    if "\x00" in text:
        raise SpecErrors.single(Location(display, text[:text.index("\x00")].count("\n") + 1), "NUL byte in a Python spec")
    odd = next((i for i, c in enumerate(text) if c in _LINE_BREAKS_PYTHON_DOES_NOT_SEE), None)
    if odd is not None:  # Python's tokenizer reads one line where str.splitlines (and libcst positions) see two
        line = text[:odd].count("\n") + 1
        raise SpecErrors.single(Location(display, line, odd - (text.rfind("\n", 0, odd) + 1) + 1),
                                f"raw {_LINE_BREAKS_PYTHON_DOES_NOT_SEE[text[odd]]} in a Python spec",
                                f"write it as the escape {text[odd].encode('unicode_escape').decode()} inside a string")
    errors = ErrorCollector()
    try:
        file = _File(path, display, text, errors, root)  # Python's ast: positions and syntax errors; parsing runs nothing
    except SyntaxError as exc:
        raise SpecErrors.single(Location(display, exc.lineno or 1, exc.offset or 1),
                                f"syntax error: {exc.msg}") from None
    reader = _Reader(file)
    reader.read()
    errors.raise_if_any()
    return _Builder(reader).build()
