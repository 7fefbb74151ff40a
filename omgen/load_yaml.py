"""YAML frontend: spec file → `Spec`, keeping file:line of every item.

PyYAML's composed node tree gives positions; values are built from it here
so that unknown keys, wrong value types and duplicate names are reported at
their line, all of them at once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import keyword
import re
from pathlib import Path
from typing import Any

import yaml

from . import limits
from .names import MODULE_MEMBERS, RESERVED
from .errors import ErrorCollector, Location, SpecErrors, did_you_mean
from .model import (TermPart, Allowance, Block, Code, ConfigDecl, EntrypointDecl, FunctionDecl, InputDecl, Spec, TermDef,
                    VariantDecl)
from .shapes import ShapeSyntaxError, normalise_dim
from .types import CONFIG_TYPES, TypeSyntaxError, coerce_config_value, normalise_type, python_value_matches

TOP_KEYS = ("om", "doc", "include", "allow", "config", "inputs", "functions", "blocks", "compose", "mixins",
            "variants", "entrypoints")
CONFIG_KEYS = ("type", "default", "doc")
INPUT_KEYS = ("type", "shape", "dtype", "role", "doc")
FUNCTION_KEYS = ("args", "returns", "doc", "body", "expr")
BLOCK_KEYS = ("doc", "bases", "terms")
TERM_KEYS = ("type", "shape", "math", "doc", "expr", "body", "new", "probe", "outputs")
PART_KEYS = ("type", "shape", "math", "doc", "probe")
VARIANT_KEYS = ("mixins", "config", "doc")
ENTRYPOINT_KEYS = ("outputs", "doc")
DTYPES = ("float", "long", "int", "bool", "uint8", "any")
ROLES = ("prediction", "truth", "other")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # used with match(): \Z, not $, which admits a final newline
MIXIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 20x faster, same nodes


class _Reader:
    """Builds model objects from one file's node tree, collecting errors."""

    def __init__(self, path: Path, display: str, errors: ErrorCollector, lines: list[str], digest: str):
        self.lines = lines
        self.digest = digest  # sha256 of the bytes that were read
        self.path = path
        self.display = display
        self.errors = errors
        self._constructor = yaml.SafeLoader("")

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def value(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key → (key node, value node); reports duplicates and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            self.errors.error(self.loc(node), f"{what} must be a mapping")
            return {}
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                self.errors.error(self.loc(key_node), f"keys of {what} must be strings, got {key!r}")
                continue
            if key in result:
                self.errors.error(self.loc(key_node), f"duplicate key '{key}' in {what}",
                                  f"first at line {result[key][0].start_mark.line + 1}")
                continue
            if allowed is not None and key not in allowed:
                hint = did_you_mean(key, allowed) or f"expected one of: {', '.join(allowed)}"
                if not IDENTIFIER.match(key) and isinstance(node, yaml.MappingNode) and node.flow_style:
                    hint = "a comma ends a value inside {...}: quote the expression, e.g. {expr: 'f(a, b)'}"
                self.errors.error(self.loc(key_node), f"unknown key '{key}' in {what}", hint)
                continue
            result[key] = (key_node, value_node)
        return result

    def string(self, node: yaml.Node | None, what: str, default: str = "") -> str:
        if node is None:
            return default
        value = self.value(node)
        if value is None:
            return default
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.errors.error(self.loc(node), f"{what} must be a string, got {type(value).__name__}")
            return default
        if what == "doc":  # the Python frontend's docstring rule (inspect.cleandoc), so both read a doc alike
            return inspect.cleandoc(str(value))
        return str(value)

    def name_list(self, node: yaml.Node | None, what: str, pattern: re.Pattern = IDENTIFIER) -> tuple[str, ...]:
        if node is None:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.errors.error(self.loc(node), f"{what} must be a list of names")
            return ()
        names = []
        for item in node.value:
            value = self.value(item)
            if not isinstance(value, str) or not pattern.match(value):
                self.errors.error(self.loc(item), f"{what}: '{value}' is not a valid name")
                continue
            if value in names:
                self.errors.error(self.loc(item), f"{what}: '{value}' is listed twice")
                continue
            names.append(value)
        return tuple(names)

    def type_string(self, node: yaml.Node, what: str) -> str | None:
        try:
            return normalise_type(self.string(node, what))
        except TypeSyntaxError as exc:
            self.errors.error(self.loc(node), f"{what}: {exc}")
            return None

    def shape(self, node: yaml.Node | None, what: str) -> tuple[str | int, ...] | None:
        if node is None:
            return None
        if not isinstance(node, yaml.SequenceNode):
            self.errors.error(self.loc(node), f"{what} must be a list such as [N, 1, H, W]")
            return None
        dims: list[str | int] = []
        for item in node.value:
            try:
                dims.append(normalise_dim(self.value(item)))
            except ShapeSyntaxError as exc:
                self.errors.error(self.loc(item), f"{what}: {exc}")
        return tuple(dims)

    def code(self, key: str, node: yaml.Node) -> Code | None:
        """An `expr` or `body` value as a function body with its spec origin."""
        if not isinstance(node, yaml.ScalarNode) or not isinstance(self.value(node), (str, int, float)):
            self.errors.error(self.loc(node), f"'{key}' must be Python source text")
            return None
        text = str(self.value(node))
        if node.style in ("|", ">"):
            origin = Location(self.display, node.start_mark.line + 2, 0)
            content = node.start_mark.line + 1
            line = self.lines[content] if content < len(self.lines) else ""
            indent = len(line) - len(line.lstrip(" "))
        else:
            origin = Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1 + (1 if node.style in ("'", '"') else 0))
            indent = 0
        if key == "expr":
            return Code.from_expr(text, origin, column_offset=indent)
        return Code(text if text.endswith("\n") else text + "\n", origin, column_offset=indent)


def load_spec(path: str | Path, display_root: Path | None = None) -> Spec:
    """Parse a YAML spec and its includes into a Spec, or raise SpecErrors."""
    path = Path(path)
    root = display_root or project_root(path)
    errors = ErrorCollector()
    parts: list[tuple[_Reader, dict[str, tuple[yaml.Node, yaml.Node]]]] = []
    _read_with_includes(path.resolve(), root, errors, parts, stack=())
    errors.raise_if_any()
    return _build_spec(parts, errors, root)


def project_root(path: Path) -> Path:
    """The nearest folder above `path` holding pyproject.toml (else the current folder)."""
    for parent in path.resolve().parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def display_path(path: Path, root: Path) -> str:
    """Path as messages and headers show it: relative to the project, so output is the same on every machine."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _read_with_includes(path: Path, root: Path, errors: ErrorCollector, parts: list, stack: tuple[Path, ...],
                        include_site: Location | None = None) -> None:
    display = display_path(path, root)
    if path in stack:
        chain = " -> ".join(display_path(p, root) for p in stack + (path,))
        errors.error(include_site or Location(display), f"include cycle: {chain}")
        return
    if any(path == reader.path for reader, _ in parts):
        return  # included twice through different routes: read once
    if len(stack) >= limits.MAX_INCLUDE_DEPTH:
        errors.error(include_site or Location(display), f"includes nested more than {limits.MAX_INCLUDE_DEPTH} deep")
        return
    if len(parts) >= limits.MAX_INCLUDED_FILES:
        errors.error(include_site or Location(display), f"more than {limits.MAX_INCLUDED_FILES} spec files included")
        return
    try:
        text, data = limits.read_text(path, display, include_site)
        node = compose_yaml(text, display, include_site)
    except SpecErrors as exc:
        errors.extend(exc.diagnostics)
        return
    reader = _Reader(path, display, errors, text.splitlines(), hashlib.sha256(data).hexdigest())
    if node is None:
        errors.error(include_site or Location(display, 1, 1), f"include '{display}': empty spec file" if include_site
                     else "empty spec file", "a spec needs at least 'om', 'blocks' and 'entrypoints'")
        return
    if include_site and not isinstance(node, yaml.MappingNode):
        errors.error(include_site, f"include '{display}' is not a spec (its top level is not a mapping)")
        return
    top = reader.mapping(node, "the spec", TOP_KEYS)
    parts.append((reader, top))
    if "include" in top:
        include_node = top["include"][1]
        if not isinstance(include_node, yaml.SequenceNode):
            errors.error(reader.loc(include_node), "include must be a list of spec file paths")
            return
        for item in include_node.value:
            rel = reader.string(item, "include entry")
            if rel:
                _read_with_includes((path.parent / rel).resolve(), root, errors, parts, stack + (path,), reader.loc(item))


YAML_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map"))


def compose_yaml(text: str, display: str, site: Location | None = None) -> yaml.Node | None:
    """PyYAML's node tree of `text`, after an event scan that bounds nesting and refuses tags and aliases.

    The composer is recursive and tags construct objects, so both are checked on
    the (iterative) event stream first: one error line instead of a stack overflow
    or a constructor's traceback.
    """
    prefix = f"include '{display}': " if site else ""

    def fail(mark, message: str, hint: str = "") -> SpecErrors:
        here = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        return SpecErrors.single(site or here, f"{prefix}{here}: {message}" if site else message, hint)

    depth = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > limits.MAX_YAML_DEPTH:
                    raise fail(event.start_mark, f"YAML nested more than {limits.MAX_YAML_DEPTH} deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                raise fail(event.start_mark, "YAML aliases (*name) are not part of the spec language",
                           "write the value out")
            if getattr(event, "anchor", None):
                raise fail(event.start_mark, "YAML anchors (&name) are not part of the spec language",
                           "write the value out")
            tag = getattr(event, "tag", None)
            if tag is not None and tag not in YAML_TAGS and tag != "!":
                raise fail(event.start_mark, f"YAML tag '{tag}' is not part of the spec language",
                           "remove the tag: values are plain strings, numbers, lists and mappings")
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # libyaml >= 0.2.6 (PyYAML 6.0.4) scans brackets ahead of our count
            raise fail(mark, f"YAML nested more than {limits.MAX_YAML_DEPTH} deep") from None
        raise fail(mark, f"malformed YAML: {problem}") from None


@dataclasses.dataclass(frozen=True)
class Library:
    """What included spec files contribute to the spec that includes them (the Python frontend's `include`)."""

    config: tuple[ConfigDecl, ...]
    inputs: tuple[InputDecl, ...]
    functions: tuple[FunctionDecl, ...]
    blocks: tuple[Block, ...]
    sources: tuple[tuple[str, str], ...]  # (display path, sha256) of every included file
    allowances: tuple[Allowance, ...] = ()


def load_library(includes: list[tuple[str, Location]], base: Path, root: Path) -> Library:
    """Read YAML spec libraries named (relative to `base`) by another spec's include list, or raise SpecErrors."""
    errors = ErrorCollector()
    parts: list[tuple[_Reader, dict[str, tuple[yaml.Node, yaml.Node]]]] = []
    for rel, site in includes:
        _read_with_includes((base / rel).resolve(), root, errors, parts, stack=(), include_site=site)
    errors.raise_if_any()
    _forbid_main_keys(parts, errors)
    config, inputs, functions, blocks = _collect_sections(parts, errors, _Names(errors))
    errors.raise_if_any()
    return Library(tuple(config), tuple(inputs), tuple(functions), tuple(blocks), _sources(parts), _allowances(parts))


def _allowances(parts: list) -> tuple[Allowance, ...]:
    """`allow: {torch.cuda.synchronize: why}` of every file: exceptions to the purity check, with reasons."""
    found: dict[str, Allowance] = {}
    for reader, top in parts:
        for name, (key_node, node) in _section(reader, top, "allow").items():
            found.setdefault(name, Allowance(name, reader.string(node, f"reason for allowing '{name}'"),
                                             reader.loc(key_node)))
    return tuple(found.values())


def _sources(parts: list) -> tuple[tuple[str, str], ...]:
    return tuple((reader.display, reader.digest) for reader, _ in parts)


class _Names:
    """The names one spec defines so far: a second definition of a name is an error at its line."""

    def __init__(self, errors: ErrorCollector):
        self.errors = errors
        self.seen: dict[str, Location] = {}

    def claim(self, name: str, loc: Location, what: str) -> bool:
        if name in self.seen:
            self.errors.error(loc, f"duplicate name '{name}' ({what})", f"already defined at {self.seen[name]}")
            return False
        self.seen[name] = loc
        return True


def _forbid_main_keys(parts: list, errors: ErrorCollector) -> None:
    for reader, top in parts:
        for key in ("om", "compose", "variants", "entrypoints"):
            if key in top:
                errors.error(reader.loc(top[key][0]), f"'{key}' belongs in the main spec, not in an included file")


def _collect_sections(parts: list, errors: ErrorCollector, names: _Names) -> tuple[list, list, list, list]:
    """Config, inputs, functions and blocks (mixins included) of every file, in include order."""
    config: list[ConfigDecl] = []
    inputs: list[InputDecl] = []
    functions: list[FunctionDecl] = []
    blocks: list[Block] = []
    for reader, top in parts:
        for name, (key_node, node) in _section(reader, top, "config").items():
            if _check_name(reader, key_node, name, "config value") and names.claim(name, reader.loc(key_node), "config value"):
                decl = _config(reader, name, key_node, node)
                if decl:
                    config.append(decl)
        for name, (key_node, node) in _section(reader, top, "inputs").items():
            if _check_name(reader, key_node, name, "input") and names.claim(name, reader.loc(key_node), "input"):
                inputs.append(_input(reader, name, key_node, node))
        for name, (key_node, node) in _section(reader, top, "functions").items():
            if _check_name(reader, key_node, name, "function") and names.claim(name, reader.loc(key_node), "function"):
                decl = _function(reader, name, key_node, node)
                if decl:
                    functions.append(decl)
        for section, kind in (("blocks", "block"), ("mixins", "mixin")):
            for name, (key_node, node) in _section(reader, top, section).items():
                pattern = IDENTIFIER if kind == "block" else MIXIN_NAME
                if not pattern.match(name):
                    errors.error(reader.loc(key_node), f"'{name}' is not a valid {kind} name")
                    continue
                if names.claim(name, reader.loc(key_node), kind):
                    blocks.append(_block(reader, name, kind, key_node, node))
    return config, inputs, functions, blocks


def _build_spec(parts: list, errors: ErrorCollector, root: Path) -> Spec:
    main_reader, main_top = parts[0]
    names = _Names(errors)
    seen = names.seen
    config, inputs, functions, blocks = _collect_sections(parts, errors, names)

    term_locations = {t.name: t.location for b in blocks for t in b.terms}
    for name, loc in term_locations.items():
        if name in seen and seen[name] != loc:
            errors.error(loc, f"term '{name}' has the name of a config value, input, function or block",
                         f"see {seen[name]}")

    om_node = main_top.get("om", (None, None))[1]
    om = main_reader.string(om_node, "om")
    if not om_node:
        errors.error(Location(main_reader.display, 1, 1), "missing 'om' (the module name of the OM)")
    elif not IDENTIFIER.match(om) or keyword.iskeyword(om):
        errors.error(main_reader.loc(om_node), f"om '{om}' must be a Python identifier")
    compose_node = main_top.get("compose", (None, None))[1]
    compose = main_reader.name_list(compose_node, "compose")
    if not compose_node:
        errors.error(Location(main_reader.display, 1, 1), "missing 'compose' (the blocks of the base OM)")
    variants = _variants(main_reader, main_top.get("variants", (None, None))[1])
    entrypoints = _entrypoints(main_reader, main_top.get("entrypoints", (None, None))[1])
    if not entrypoints and "entrypoints" not in main_top:
        errors.error(Location(main_reader.display, 1, 1), "missing 'entrypoints' (which terms each module returns)")
    _forbid_main_keys(parts[1:], errors)
    errors.raise_if_any()
    return Spec(
        om=om, doc=main_reader.string(main_top.get("doc", (None, None))[1], "doc"), path=main_reader.display,
        sources=_sources(parts), config=tuple(config), inputs=tuple(inputs), functions=tuple(functions),
        blocks=tuple(blocks), compose=compose, variants=variants, entrypoints=entrypoints,
        location=Location(main_reader.display, 1, 1), includes=_direct_includes(main_reader, main_top, root),
        allowances=_allowances(parts),
    )


def _direct_includes(reader: _Reader, top: dict, root: Path) -> tuple[str, ...]:
    if "include" not in top or not isinstance(top["include"][1], yaml.SequenceNode):
        return ()
    names = (reader.value(item) for item in top["include"][1].value)
    paths = (display_path((reader.path.parent / name).resolve(), root) for name in names if isinstance(name, str))
    return tuple(dict.fromkeys(paths))  # a file listed twice is read once



def _section(reader: _Reader, top: dict, key: str) -> dict:
    if key not in top:
        return {}
    node = top[key][1]
    if isinstance(node, yaml.ScalarNode) and reader.value(node) is None:
        return {}
    return reader.mapping(node, f"'{key}'")


def _check_name(reader: _Reader, key_node: yaml.Node, name: str, what: str) -> bool:
    if not IDENTIFIER.match(name) or keyword.iskeyword(name):
        reader.errors.error(reader.loc(key_node), f"{what} '{name}' is not a Python identifier")
        return False
    if name in RESERVED:
        reader.errors.error(reader.loc(key_node), f"{what} '{name}' shadows the global '{name}' that bodies use")
        return False
    if what in ("term", "config value") and (name in MODULE_MEMBERS or name.startswith("_")):
        reader.errors.error(reader.loc(key_node), f"{what} '{name}' would hide the generated module's member '{name}'",
                            "choose another name" + (" (leading '_' is reserved)" if name.startswith("_") else ""))
        return False
    return True


def _fields(reader: _Reader, node: yaml.Node, what: str, allowed: tuple[str, ...],
            shorthand: str | None = None) -> dict[str, yaml.Node]:
    """A mapping's value nodes; a scalar is accepted as `{shorthand: scalar}`."""
    if shorthand and isinstance(node, yaml.ScalarNode):
        return {shorthand: node}
    return {key: value for key, (_, value) in reader.mapping(node, what, allowed).items()}


def _config(reader: _Reader, name: str, key_node: yaml.Node, node: yaml.Node) -> ConfigDecl | None:
    fields = _fields(reader, node, f"config '{name}'", CONFIG_KEYS)
    loc = reader.loc(key_node)
    if "type" not in fields or "default" not in fields:
        reader.errors.error(loc, f"config '{name}' needs 'type' and 'default'", "e.g. {type: float, default: 0.5}")
        return None
    type_name = reader.type_string(fields["type"], f"type of config '{name}'")
    if type_name is None:
        return None
    if type_name not in CONFIG_TYPES:
        reader.errors.error(reader.loc(fields["type"]), f"config '{name}' has type {type_name}",
                            f"config types are {', '.join(CONFIG_TYPES)}")
        return None
    default = reader.value(fields["default"])
    if not python_value_matches(type_name, default):
        reader.errors.error(reader.loc(fields["default"]), f"default of config '{name}' is {default!r}, not a {type_name}")
        return None
    return ConfigDecl(name, type_name, coerce_config_value(type_name, default),
                      reader.string(fields.get("doc"), "doc"), loc)


def _input(reader: _Reader, name: str, key_node: yaml.Node, node: yaml.Node) -> InputDecl:
    fields = _fields(reader, node, f"input '{name}'", INPUT_KEYS)
    type_name = reader.type_string(fields["type"], f"type of input '{name}'") if "type" in fields else "Tensor"
    dtype = reader.string(fields.get("dtype"), "dtype", "any")
    if dtype not in DTYPES:
        reader.errors.error(reader.loc(fields["dtype"]), f"input '{name}': unknown dtype '{dtype}'",
                            did_you_mean(dtype, DTYPES) or f"expected one of {', '.join(DTYPES)}")
    role = reader.string(fields.get("role"), "role", "other")
    if role not in ROLES:
        reader.errors.error(reader.loc(fields["role"]), f"input '{name}': unknown role '{role}'",
                            did_you_mean(role, ROLES) or f"expected one of {', '.join(ROLES)}")
    return InputDecl(name, type_name or "Tensor", reader.shape(fields.get("shape"), f"shape of input '{name}'"),
                     dtype, role, reader.string(fields.get("doc"), "doc"), reader.loc(key_node))


def _function(reader: _Reader, name: str, key_node: yaml.Node, node: yaml.Node) -> FunctionDecl | None:
    fields = _fields(reader, node, f"function '{name}'", FUNCTION_KEYS)
    loc = reader.loc(key_node)
    code = _one_code(reader, fields, loc, f"function '{name}'")
    args: list[tuple[str, str]] = []
    for arg, (arg_key, arg_node) in (reader.mapping(fields["args"], f"args of '{name}'") if "args" in fields else {}).items():
        if _check_name(reader, arg_key, arg, "argument"):
            arg_type = reader.type_string(arg_node, f"type of argument '{arg}'")
            if arg_type:
                args.append((arg, arg_type))
    returns = reader.type_string(fields["returns"], f"return type of '{name}'") if "returns" in fields else None
    if "returns" not in fields:
        reader.errors.error(loc, f"function '{name}' needs 'returns' (its return type)")
    if code is None or returns is None:
        return None
    return FunctionDecl(name, tuple(args), returns, reader.string(fields.get("doc"), "doc"), code, loc)


def _one_code(reader: _Reader, fields: dict, loc: Location, what: str) -> Code | None:
    present = [key for key in ("expr", "body") if key in fields]
    if len(present) != 1:
        reader.errors.error(loc, f"{what} needs exactly one of 'expr' or 'body'",
                            "both given" if present else "neither given")
        return None
    return reader.code(present[0], fields[present[0]])


def _block(reader: _Reader, name: str, kind: str, key_node: yaml.Node, node: yaml.Node) -> Block:
    fields = _fields(reader, node, f"{kind} '{name}'", BLOCK_KEYS)
    terms = []
    for term_name, (term_key, term_node) in (reader.mapping(fields["terms"], f"terms of '{name}'") if "terms" in fields else {}).items():
        if not _check_name(reader, term_key, term_name, "term"):
            continue
        term = _term(reader, name, kind, term_name, term_key, term_node)
        if term:
            terms.append(term)
    return Block(name, kind, reader.name_list(fields.get("bases"), f"bases of '{name}'", MIXIN_NAME),
                 tuple(terms), reader.string(fields.get("doc"), "doc"), reader.loc(key_node))


def _term(reader: _Reader, owner: str, kind: str, name: str, key_node: yaml.Node, node: yaml.Node) -> TermDef | None:
    fields = _fields(reader, node, f"term '{name}'", TERM_KEYS, shorthand="expr")
    loc = reader.loc(key_node)
    code = _one_code(reader, fields, loc, f"term '{name}'")
    type_name = reader.type_string(fields["type"], f"type of term '{name}'") if "type" in fields else None
    is_new = bool(reader.value(fields["new"])) if "new" in fields else False
    if "new" in fields and kind != "mixin":
        reader.errors.error(reader.loc(fields["new"]), "'new' is only for mixin terms (a block term is always new)")
    is_probe = _probe(reader, fields, f"term '{name}'")
    parts = _parts(reader, name, fields["outputs"]) if "outputs" in fields else ()
    if code is None:
        return None
    return TermDef(name, owner, code, type_name, reader.shape(fields.get("shape"), f"shape of term '{name}'"),
                   reader.string(fields["math"], "math") if "math" in fields else None,
                   reader.string(fields.get("doc"), "doc"), is_new, loc, is_probe=is_probe, parts=parts)


def _probe(reader: _Reader, fields: dict, what: str) -> bool:
    if "probe" not in fields:
        return False
    value = reader.value(fields["probe"])
    if not isinstance(value, bool):
        reader.errors.error(reader.loc(fields["probe"]), f"{what}: 'probe' is true or false, got {value!r}")
    return value is True


def _parts(reader: _Reader, term: str, node: yaml.Node) -> tuple[TermPart, ...]:
    """``outputs``: a list of part names, or a mapping part name -> {type, shape, math, doc, probe}, in tuple order."""
    if isinstance(node, yaml.SequenceNode):
        named = [(item, None) for item in node.value]
    elif isinstance(node, yaml.MappingNode):
        named = list(node.value)
    else:
        reader.errors.error(reader.loc(node), f"outputs of term '{term}' must be a list of names or a mapping",
                            "e.g. outputs: [centers_pred, center_scores] or outputs: {centers_pred: {shape: [N, k, 2]}}")
        return ()
    if not named:
        reader.errors.error(reader.loc(node), f"outputs of term '{term}' is empty", "name at least one part")
    parts = []
    for index, (key_node, value_node) in enumerate(named):
        name = reader.value(key_node)
        if not isinstance(name, str):
            reader.errors.error(reader.loc(key_node), f"output {index} of term '{term}' must be a name, got {name!r}")
            continue
        if not _check_name(reader, key_node, name, "term"):
            continue
        what = f"output '{name}' of term '{term}'"
        fields = _fields(reader, value_node, what, PART_KEYS) if value_node is not None and not (
            isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~", "null")) else {}
        type_name = reader.type_string(fields["type"], f"type of {what}") if "type" in fields else None
        parts.append(TermPart(name, index, type_name, reader.shape(fields.get("shape"), f"shape of {what}"),
                              reader.string(fields["math"], "math") if "math" in fields else None,
                              reader.string(fields.get("doc"), "doc") or "" if "doc" in fields else "",
                              _probe(reader, fields, what), reader.loc(key_node)))
    return tuple(parts)


def _variants(reader: _Reader, node: yaml.Node | None) -> tuple[VariantDecl, ...]:
    if node is None:
        return (VariantDecl("base", (), (), "", Location(reader.display, 1, 1)),)
    variants = []
    for name, (key_node, value) in reader.mapping(node, "'variants'").items():
        if not MIXIN_NAME.match(name):
            reader.errors.error(reader.loc(key_node), f"variant name '{name}' must be letters, digits, '_' or '-'")
            continue
        if isinstance(value, yaml.SequenceNode) or (isinstance(value, yaml.ScalarNode) and reader.value(value) is None):
            mixins = reader.name_list(value, f"mixins of variant '{name}'", MIXIN_NAME) if isinstance(value, yaml.SequenceNode) else ()
            variants.append(VariantDecl(name, mixins, (), "", reader.loc(key_node)))
            continue
        fields = _fields(reader, value, f"variant '{name}'", VARIANT_KEYS)
        overrides = []
        for key, (ck, cv) in (reader.mapping(fields["config"], f"config of variant '{name}'") if "config" in fields else {}).items():
            overrides.append((key, reader.value(cv), reader.loc(ck)))
        variants.append(VariantDecl(name, reader.name_list(fields.get("mixins"), f"mixins of variant '{name}'", MIXIN_NAME),
                                    tuple(overrides),
                                    reader.string(fields.get("doc"), "doc"), reader.loc(key_node)))
    return tuple(variants)


def _entrypoints(reader: _Reader, node: yaml.Node | None) -> tuple[EntrypointDecl, ...]:
    if node is None:
        return ()
    entrypoints = []
    for name, (key_node, value) in reader.mapping(node, "'entrypoints'").items():
        if not IDENTIFIER.match(name):
            reader.errors.error(reader.loc(key_node), f"entrypoint name '{name}' must be a Python identifier")
            continue
        if isinstance(value, yaml.SequenceNode):
            outputs, doc = reader.name_list(value, f"outputs of entrypoint '{name}'"), ""
        else:
            fields = _fields(reader, value, f"entrypoint '{name}'", ENTRYPOINT_KEYS)
            outputs = reader.name_list(fields.get("outputs"), f"outputs of entrypoint '{name}'")
            doc = reader.string(fields.get("doc"), "doc")
        if not outputs:
            reader.errors.error(reader.loc(key_node), f"entrypoint '{name}' has no outputs")
        entrypoints.append(EntrypointDecl(name, outputs, doc, reader.loc(key_node)))
    return tuple(entrypoints)
