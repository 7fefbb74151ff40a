"""Stage 2 of the Python frontend: module-level statements, classes and methods, checked one by one.

Nothing is imported or run: every construct that would change classes at run
time (assigned methods, setattr, metaclasses, nested classes) is an error at
its line, because it cannot be followed statically.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

from ..errors import Location, did_you_mean
from ..model import Code, ConfigDecl, FunctionDecl
from ..names import allowed_imports
from ..sections import MIXIN_NAME
from .source import MARKER_BASE, NOT_A_LITERAL, SourceFile, decorator_name, docstring, nested_classes

TOP_NAMES = ("om", "include", "allow", "compose", "inputs", "variants", "entrypoints")
ALLOWED_IMPORTS = allowed_imports({  # module -> names it may bind: the generated module's imports and the markers
    "omgen": {"OutputMath", "omgen", "mixin", "no_cache", "term"},
    "omgen.markers": {"OutputMath", "mixin", "no_cache", "term"}, "__future__": {"annotations"},
})
DYNAMIC_BUILTINS = ("getattr", "setattr", "hasattr", "delattr", "vars", "type")
REQUIRED = object()  # the default of a mode parameter that has none


@dataclasses.dataclass
class Param:
    name: str
    type: str
    default: Any = REQUIRED  # literal value, or REQUIRED
    default_source: str = ""
    annotated: bool = True


@dataclasses.dataclass
class Method:
    cls: ClassInfo
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
    writes_into: bool = False  # @term(into=True): the body reads `into` (omgen.model.TermDef.writes_into)
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


class ModuleReader:
    """The module-level statements, classes, methods and config of one spec file, checked one by one."""

    def __init__(self, file: SourceFile):
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
        for node, where in nested_classes(file.tree):
            inside = {"function": "inside a function", "class": "inside another class",
                      "statement": "inside a statement"}[where]
            self.errors.error(file.name_loc(node), f"class '{node.name}' is defined {inside}",
                              "omgen reads only module-level classes (it never runs the file): move it to the top level")
        self.doc, statements = docstring(file.tree)
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
        doc, statements = docstring(node)
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
                if value is NOT_A_LITERAL:
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
            found, call = decorator_name(decorator)
            if found != "mixin":
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
        doc, statements = docstring(node)
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
            if statement.value is None:
                self.errors.error(file.loc(statement.target), f"config '{name}' needs a default",
                                  f"e.g. {name}: float = 0.5")
                return
            doc = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) and \
                    isinstance(following.value.value, str):
                doc = inspect.cleandoc(following.value.value)
            decl = file.sections.config(name, file.loc(statement.target), file.annotation(statement.annotation),
                                        file.raw(statement.value), doc)
            if decl is not None:
                self.config.append(decl)
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
        is_new = is_probe = writes_into = False
        parts: tuple = ()
        for decorator in node.decorator_list:
            found, call = decorator_name(decorator)
            if found == "no_cache":
                if call is not None and (call.args or call.keywords):
                    self.errors.error(file.decorator_loc(decorator), "@no_cache with a condition is decided at run "
                                      "time", "use @no_cache without arguments (always a helper)")
                is_helper = True
            elif found == "term":
                for arg in call.args if call else ():
                    self.errors.error(file.loc(arg), "@term takes keyword arguments: shape=, math=, new=")
                for keyword_ in call.keywords if call else ():
                    key, value_node = keyword_.arg, keyword_.value
                    if key == "shape":
                        shape = file.sections.shape(file.raw(value_node), f"shape of term '{name}'")
                    elif key == "math":
                        math = file.string(value_node, "math")
                    elif key == "new":
                        value = file.literal(value_node, "new")
                        is_new = bool(value) if value is not NOT_A_LITERAL else False
                        if info.kind != "mixin":
                            self.errors.error(file.loc(keyword_), "new=True is only for mixin terms (a block term is "
                                              "always new)")
                    elif key == "outputs":
                        parts = file.sections.parts(name, file.raw(value_node))
                    elif key == "probe":
                        value = file.literal(value_node, "probe")
                        if value is not NOT_A_LITERAL and not isinstance(value, bool):
                            self.errors.error(file.loc(value_node), f"probe= is True or False, got {value!r}")
                        is_probe = value is True
                    elif key == "into":
                        value = file.literal(value_node, "into")
                        if value is not NOT_A_LITERAL and not isinstance(value, bool):
                            self.errors.error(file.loc(value_node), f"into= is True or False, got {value!r}")
                        writes_into = value is True
                    else:
                        self.errors.error(file.loc(keyword_), "@term takes shape=, math=, new=, probe=, into= and "
                                          "outputs=", did_you_mean(key or "", ("shape", "math", "new", "probe",
                                                                               "into", "outputs")))
            else:
                hint = "a term is a plain method: self.x() calls it" if found == "property" else \
                    "method decorators are @term(...) and @no_cache"
                self.errors.error(file.decorator_loc(decorator), f"unsupported decorator @{found or '...'} "
                                  f"on '{where}'", hint)
        params = self._params(node, where, method=True)
        returns = file.type_of(node.returns, f"return type of '{where}'")
        doc, statements = docstring(node)
        text, text_map = self._body_text(node, statements, where)
        if params is None or text is None:
            return None
        return Method(info, name, node, file.name_loc(node), params, returns, doc, is_helper, shape, math, is_new,
                      is_probe, writes_into, parts, text, text_map)


# ----------------------------------------------------------------------------- static evaluation
