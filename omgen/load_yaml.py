"""YAML frontend: spec file -> `Spec`, keeping file:line of every item.

PyYAML's composed node tree gives positions; it is turned into the raw tree
of omgen.sections (mappings, lists and scalars with their Location), whose
rules both frontends share. What is YAML's own is read here: includes, the
`functions`, `blocks` and `mixins` sections and the text of bodies.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import yaml

from . import limits
from .errors import ErrorCollector, Location, SpecErrors
from .model import Allowance, Block, Code, ConfigDecl, FunctionDecl, InputDecl, Spec, TermDef
from .paths import display_path, project_root
from .sections import IDENTIFIER, LIST, MAP, MIXIN_NAME, SCALAR, Raw, Sections

TOP_KEYS = ("om", "doc", "include", "allow", "config", "inputs", "functions", "blocks", "compose", "mixins",
            "variants", "entrypoints")
FUNCTION_KEYS = ("args", "returns", "doc", "body", "expr")
BLOCK_KEYS = ("doc", "bases", "terms")
TERM_KEYS = ("type", "shape", "math", "doc", "expr", "body", "new", "probe", "into", "outputs")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 20x faster, same nodes
_SCALARS = yaml.SafeLoader("")  # constructs one scalar node's value (int, float, bool, null, str)


class _File:
    """One spec file: its raw tree, and the rules applied to it (errors collected)."""

    def __init__(self, path: Path, display: str, errors: ErrorCollector, lines: list[str], digest: str):
        self.path, self.display, self.errors, self.lines = path, display, errors, lines
        self.digest = digest  # sha256 of the bytes that were read
        self.sections = Sections(errors, display)
        self.top: dict[str, tuple[Raw, Raw]] = {}

    def raw(self, node: yaml.Node) -> Raw:
        """The raw tree of a node (nesting is bounded by compose_yaml before this recursion)."""
        location = Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            pairs = tuple((self.raw(key), self.raw(value)) for key, value in node.value)
            return Raw(MAP, pairs, location, flow=bool(node.flow_style))
        if isinstance(node, yaml.SequenceNode):
            return Raw(LIST, tuple(self.raw(item) for item in node.value), location)
        value = _SCALARS.construct_object(node, deep=True)
        return Raw(SCALAR, value, location, text_origin=self._text_origin(node) if isinstance(value, str) else None)

    def _text_origin(self, node: yaml.ScalarNode) -> tuple[Location, int]:
        """Where a text's first character is, and the indent of a block scalar's lines."""
        if node.style in ("|", ">"):
            content = node.start_mark.line + 1
            line = self.lines[content] if content < len(self.lines) else ""
            return Location(self.display, node.start_mark.line + 2, 0), len(line) - len(line.lstrip(" "))
        quote = 1 if node.style in ("'", '"') else 0
        return Location(self.display, node.start_mark.line + 1, node.start_mark.column + 1 + quote), 0

    def code(self, key: str, raw: Raw) -> Code | None:
        """An `expr` or `body` value as a function body with its spec origin."""
        if raw.kind != SCALAR or not isinstance(raw.value, (str, int, float)) or isinstance(raw.value, bool):
            self.errors.error(raw.location, f"'{key}' must be Python source text")
            return None
        text = str(raw.value)
        origin, indent = raw.text_origin or (raw.location, 0)
        if key == "expr":
            return Code.from_expr(text, origin, column_offset=indent)
        return Code(text if text.endswith("\n") else text + "\n", origin, column_offset=indent)

    def section(self, key: str) -> dict[str, tuple[Raw, Raw]]:
        if key not in self.top or self.top[key][1].is_null():
            return {}
        return self.sections.mapping(self.top[key][1], f"'{key}'")

    def get(self, key: str) -> Raw | None:
        return self.top[key][1] if key in self.top else None


def load_spec(path: str | Path, display_root: Path | None = None) -> Spec:
    """Parse a YAML spec and its includes into a Spec, or raise SpecErrors."""
    path = Path(path)
    root = display_root or project_root(path)
    errors = ErrorCollector()
    files: list[_File] = []
    _read_with_includes(path.resolve(), root, errors, files, stack=())
    errors.raise_if_any()
    return _build_spec(files, errors, root)


def _read_with_includes(path: Path, root: Path, errors: ErrorCollector, files: list, stack: tuple[Path, ...],
                        include_site: Location | None = None) -> None:
    display = display_path(path, root)
    if path in stack:
        chain = " -> ".join(display_path(p, root) for p in stack + (path,))
        errors.error(include_site or Location(display), f"include cycle: {chain}")
        return
    if any(path == file.path for file in files):
        return  # included twice through different routes: read once
    if len(stack) >= limits.MAX_INCLUDE_DEPTH:
        errors.error(include_site or Location(display), f"includes nested more than {limits.MAX_INCLUDE_DEPTH} deep")
        return
    if len(files) >= limits.MAX_INCLUDED_FILES:
        errors.error(include_site or Location(display), f"more than {limits.MAX_INCLUDED_FILES} spec files included")
        return
    try:
        text, data = limits.read_text(path, display, include_site)
        node = compose_yaml(text, display, include_site)
    except SpecErrors as exc:
        errors.extend(exc.diagnostics)
        return
    file = _File(path, display, errors, text.splitlines(), hashlib.sha256(data).hexdigest())
    if node is None:
        errors.error(include_site or Location(display, 1, 1), f"include '{display}': empty spec file" if include_site
                     else "empty spec file", "a spec needs at least 'om', 'blocks' and 'entrypoints'")
        return
    if include_site and not isinstance(node, yaml.MappingNode):
        errors.error(include_site, f"include '{display}' is not a spec (its top level is not a mapping)")
        return
    file.top = file.sections.mapping(file.raw(node), "the spec", TOP_KEYS)
    files.append(file)
    for rel, site in _include_list(file):
        _read_with_includes((path.parent / rel).resolve(), root, errors, files, stack + (path,), site)


def _include_list(file: _File) -> list[tuple[str, Location]]:
    raw = file.get("include")
    if raw is None or raw.is_null():
        return []
    return file.sections.strings(raw, "include", "spec file paths", "e.g. include: [common/peaks.yaml]")


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
    files: list[_File] = []
    for rel, site in includes:
        _read_with_includes((base / rel).resolve(), root, errors, files, stack=(), include_site=site)
    errors.raise_if_any()
    _forbid_main_keys(files, errors)
    config, inputs, functions, blocks = _collect_sections(files, _Names(errors))
    errors.raise_if_any()
    return Library(tuple(config), tuple(inputs), tuple(functions), tuple(blocks), _sources(files), _allowances(files))


def _allowances(files: list[_File]) -> tuple[Allowance, ...]:
    """The `allow` of every file (the first reason given for a name wins)."""
    found: dict[str, Allowance] = {}
    for file in files:
        for allowance in file.sections.allowances(file.get("allow")):
            found.setdefault(allowance.name, allowance)
    return tuple(found.values())


def _sources(files: list[_File]) -> tuple[tuple[str, str], ...]:
    return tuple((file.display, file.digest) for file in files)


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


def _forbid_main_keys(files: list[_File], errors: ErrorCollector) -> None:
    for file in files:
        for key in ("om", "compose", "variants", "entrypoints"):
            if key in file.top:
                errors.error(file.top[key][0].location, f"'{key}' belongs in the main spec, not in an included file")


def _collect_sections(files: list[_File], names: _Names) -> tuple[list, list, list, list]:
    """Config, inputs, functions and blocks (mixins included) of every file, in include order."""
    config: list[ConfigDecl] = []
    inputs: list[InputDecl] = []
    functions: list[FunctionDecl] = []
    blocks: list[Block] = []
    for file in files:
        rules = file.sections
        for name, (key, raw) in file.section("config").items():
            if rules.check_name(key.location, name, "config value") and names.claim(name, key.location, "config value"):
                fields = rules.fields(raw, f"config '{name}'", ("type", "default", "doc"))
                decl = rules.config(name, key.location, fields.get("type"), fields.get("default"),
                                    rules.string(fields.get("doc"), "doc"))
                if decl:
                    config.append(decl)
        for name, (key, raw) in file.section("inputs").items():
            if rules.check_name(key.location, name, "input") and names.claim(name, key.location, "input"):
                inputs.append(rules.input(name, key.location, raw))
        for name, (key, raw) in file.section("functions").items():
            if rules.check_name(key.location, name, "function") and names.claim(name, key.location, "function"):
                function = _function(file, name, key.location, raw)
                if function:
                    functions.append(function)
        for section, kind in (("blocks", "block"), ("mixins", "mixin")):
            for name, (key, raw) in file.section(section).items():
                if not (IDENTIFIER if kind == "block" else MIXIN_NAME).match(name):
                    file.errors.error(key.location, f"'{name}' is not a valid {kind} name")
                    continue
                if names.claim(name, key.location, kind):
                    blocks.append(_block(file, name, kind, key.location, raw))
    return config, inputs, functions, blocks


def _build_spec(files: list[_File], errors: ErrorCollector, root: Path) -> Spec:
    main = files[0]
    rules = main.sections
    names = _Names(errors)
    config, inputs, functions, blocks = _collect_sections(files, names)
    for block in blocks:
        for term in block.terms:
            seen = names.seen.get(term.name)
            if seen is not None and seen != term.location:
                errors.error(term.location, f"term '{term.name}' has the name of a config value, input, function "
                             "or block", f"see {seen}")
    om = rules.om(main.get("om"))
    compose = rules.compose(main.get("compose"), lambda raw, what: rules.name_list(raw, what))
    variants = rules.variants(main.get("variants"), lambda raw, what: rules.name_list(raw, what, MIXIN_NAME))
    entrypoints = rules.entrypoints(main.get("entrypoints"), rules.term_name)
    _forbid_main_keys(files[1:], errors)
    errors.raise_if_any()
    includes = (display_path((main.path.parent / rel).resolve(), root) for rel, _ in _include_list(main))
    return Spec(
        om=om, doc=rules.string(main.get("doc"), "doc"), path=main.display, sources=_sources(files),
        config=tuple(config), inputs=tuple(inputs), functions=tuple(functions), blocks=tuple(blocks),
        compose=compose, variants=variants, entrypoints=entrypoints, location=Location(main.display, 1, 1),
        includes=tuple(dict.fromkeys(includes)),  # a file listed twice is read once
        allowances=_allowances(files),
    )


def _function(file: _File, name: str, location: Location, raw: Raw) -> FunctionDecl | None:
    rules = file.sections
    fields = rules.fields(raw, f"function '{name}'", FUNCTION_KEYS)
    code = _one_code(file, fields, location, f"function '{name}'")
    args: list[tuple[str, str]] = []
    for arg, (arg_key, arg_raw) in (rules.mapping(fields["args"], f"args of '{name}'") if "args" in fields else {}).items():
        if rules.check_name(arg_key.location, arg, "argument"):
            arg_type = rules.type_string(arg_raw, f"type of argument '{arg}'")
            if arg_type:
                args.append((arg, arg_type))
    returns = rules.type_string(fields["returns"], f"return type of '{name}'") if "returns" in fields else None
    if "returns" not in fields:
        file.errors.error(location, f"function '{name}' needs 'returns' (its return type)")
    if code is None or returns is None:
        return None
    return FunctionDecl(name, tuple(args), returns, rules.string(fields.get("doc"), "doc"), code, location)


def _one_code(file: _File, fields: dict[str, Raw], location: Location, what: str) -> Code | None:
    present = [key for key in ("expr", "body") if key in fields]
    if len(present) != 1:
        file.errors.error(location, f"{what} needs exactly one of 'expr' or 'body'",
                          "both given" if present else "neither given")
        return None
    return file.code(present[0], fields[present[0]])


def _block(file: _File, name: str, kind: str, location: Location, raw: Raw) -> Block:
    rules = file.sections
    fields = rules.fields(raw, f"{kind} '{name}'", BLOCK_KEYS)
    terms = []
    for term_name, (key, term_raw) in (rules.mapping(fields["terms"], f"terms of '{name}'") if "terms" in fields else {}).items():
        if rules.check_name(key.location, term_name, "term"):
            term = _term(file, name, kind, term_name, key.location, term_raw)
            if term:
                terms.append(term)
    return Block(name, kind, rules.name_list(fields.get("bases"), f"bases of '{name}'", MIXIN_NAME),
                 tuple(terms), rules.string(fields.get("doc"), "doc"), location)


def _term(file: _File, owner: str, kind: str, name: str, location: Location, raw: Raw) -> TermDef | None:
    rules = file.sections
    fields = rules.fields(raw, f"term '{name}'", TERM_KEYS, shorthand="expr")
    code = _one_code(file, fields, location, f"term '{name}'")
    type_name = rules.type_string(fields["type"], f"type of term '{name}'") if "type" in fields else None
    is_new = bool(fields["new"].value) if "new" in fields else False
    if "new" in fields and kind != "mixin":
        file.errors.error(fields["new"].location, "'new' is only for mixin terms (a block term is always new)")
    is_probe = rules.flag(fields.get("probe"), f"term '{name}': 'probe'")
    writes_into = rules.flag(fields.get("into"), f"term '{name}': 'into'")
    parts = rules.parts(name, fields["outputs"]) if "outputs" in fields else ()
    if code is None:
        return None
    return TermDef(name, owner, code, type_name, rules.shape(fields.get("shape"), f"shape of term '{name}'"),
                   rules.string(fields["math"], "math") if "math" in fields else None,
                   rules.string(fields.get("doc"), "doc"), is_new, location, is_probe=is_probe, parts=parts,
                   writes_into=writes_into)
