"""`omgen convert SPEC -o OUT`: YAML ↔ Python specs, through the spec model.

The output format is chosen by OUT's extension. Both writers work from the
`Spec` the frontends build, so a converted spec compiles to the same
generated code as the original (only the header's spec path and hash and
the spec line numbers in comments differ). Bodies are converted with libcst:
YAML → Python turns the bare names of terms into `self.term()`, of inputs
and config into `self.name`, and `super()` into `super().term()`;
Python → YAML writes the canonical bodies the Python frontend produced
(specialised modes and helpers included, as terms and functions).
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Iterable, Sequence

import libcst as cst

from .literals import py_string as literal_string
from .parts import split_parts
from .bodies import read_body
from .errors import Location, SpecErrors
from .paths import project_root
from .names import INTO_NAMES
from .model import Block, Code, Spec, TermDef

LINE = 110
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def convert(spec_path: str | Path, out_path: str | Path) -> Iterable[str]:
    """Write `out_path` (.py or .yaml) from `spec_path`; yields one line per written file."""
    from .compile import load

    out = Path(out_path)
    if out.suffix not in (".py", ".yaml", ".yml"):
        raise SpecErrors.single(Location(str(out)), "unknown output format", "write to a .py or .yaml file")
    if Path(spec_path).resolve() == out.resolve():
        raise SpecErrors.single(Location(str(out)), "the output would overwrite the spec", "choose another -o")
    spec = load(spec_path)
    root = project_root(Path(spec_path))
    includes = [Path(os.path.relpath(root / name, out.parent.resolve())).as_posix() for name in spec.includes]
    text = to_python(spec, includes) if out.suffix == ".py" else to_yaml(spec, includes)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    yield f"{spec.path} -> {out} ({'Python' if out.suffix == '.py' else 'YAML'}, {sum(len(b.terms) for b in spec.blocks)} "\
          f"term definitions)"


# ----------------------------------------------------------------------------- literals


def py_literal(value: Any, indent: int = 0, width: int = LINE) -> str:
    """A Python literal, on one line when it fits, else one item per line."""
    flat = _flat(value)
    if indent + len(flat) <= width or not isinstance(value, (list, tuple, dict)) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{_flat(k)}: {py_literal(v, indent + 4, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    if all(not isinstance(v, (list, tuple, dict)) for v in value):  # fill lines with scalars
        lines = textwrap.wrap(", ".join(_flat(v) for v in value) + ",", width - indent - 4, break_long_words=False,
                              break_on_hyphens=False)
        body = "\n".join(pad + line for line in lines)
    else:
        body = "\n".join(f"{pad}{py_literal(v, indent + 4, width)}," for v in value)
    return "[\n" + body + "\n" + " " * indent + "]"


class _Raw(str):
    """A name written as is (a class), not as a string."""


def _flat(value: Any) -> str:
    if isinstance(value, _Raw):
        return str.__str__(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, str):
        return py_string(value)
    return repr(value)


def py_string(text: str) -> str:
    """A string literal; raw when it holds backslashes (LaTeX) and a raw literal can spell it. Text with any
    character that is not printable (CR, NUL, U+2028, U+0085, form feed, bidi controls...) is written escaped
    (the literals of omgen.literals), never raw: Python's tokenizer and str.splitlines disagree on such lines."""
    if not text.isprintable():
        return literal_string(text)
    if "\\" in text and '"' not in text and not text.endswith("\\"):
        return f'r"{text}"'
    if '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def docstring(text: str, indent: int) -> str:
    """A docstring at `indent`, wrapped to the line width (the compiler reads it with inspect.cleandoc); text with
    characters that are not printable (other than line breaks) becomes one escaped literal instead."""
    pad = " " * indent
    if not all(line.isprintable() for line in text.split("\n")):
        return pad + literal_string(text.strip()) + "\n"
    text = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    if "\n" not in text and indent + len(text) + 6 <= LINE:
        return f'{pad}"""{text}"""\n'
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append("")
        lines += textwrap.wrap(" ".join(paragraph.split()), LINE - indent, break_long_words=False,
                               break_on_hyphens=False)
    body = "\n".join(pad + line if line else "" for line in lines)
    return pad + '"""' + body[indent:] + "\n" + pad + '"""\n'


# ----------------------------------------------------------------------------- YAML → Python


class _ToMethodBody(cst.CSTTransformer):
    def __init__(self, free: set[cst.Name], terms: set[str], values: set[str], super_calls: set[cst.Call], term: str):
        super().__init__()
        self.free, self.terms, self.values, self.super_calls, self.term = free, terms, values, super_calls, term

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original not in self.free:
            return updated
        if original.value in self.terms:
            return cst.Call(func=cst.Attribute(cst.Name("self"), cst.Name(original.value)))
        if original.value in self.values:
            return cst.Attribute(cst.Name("self"), cst.Name(original.value))
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if original in self.super_calls:
            return cst.Call(func=cst.Attribute(cst.Call(func=cst.Name("super")), cst.Name(self.term)))
        return updated


def method_body(code: Code, term: str, terms: set[str], values: set[str]) -> str:
    """A canonical body as the body of a method (self.term(), self.value, super().term()), not indented."""
    names = read_body(code)
    transformer = _ToMethodBody(set(names.free), terms, values, set(names.super_calls), term)
    new = names.module.visit(transformer)
    lines = new.code.split("\n")[1:]
    body = [line[4:] if line.startswith("    ") else line.lstrip(" ") for line in lines]
    while body and not body[-1].strip():
        body.pop()
    return "\n".join(body) + "\n"


def _class_names(spec: Spec) -> dict[str, str]:
    names: dict[str, str] = {}
    taken = {b.name for b in spec.blocks if b.kind == "block"}
    config = "Config"
    while config in taken:
        config = "OM" + config
    names[""] = config  # the class of the config values, the root of every other class
    taken.add(config)
    for block in spec.blocks:
        if block.kind == "block":
            names[block.name] = block.name
            continue
        name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", block.name) if part) or "Mixin"
        if not IDENTIFIER.match(name):
            name = "M" + name
        while name in taken:
            name += "Mixin"
        taken.add(name)
        names[block.name] = name
    return names


def _ordered_blocks(spec: Spec) -> list[Block]:
    """Spec order, except that a class comes after its bases (Python needs them defined first)."""
    by_name = spec.blocks_by_name
    done: list[Block] = []
    seen: set[str] = set()

    def place(block: Block, stack: tuple[str, ...]) -> None:
        if block.name in seen or block.name in stack:
            return
        for base in block.bases:
            if base in by_name:
                place(by_name[base], stack + (block.name,))
        seen.add(block.name)
        done.append(block)

    for kind in ("block", "mixin"):
        for block in spec.blocks:
            if block.kind == kind:
                place(block, ())
    return done


def _own_part(spec: Spec, includes: Sequence[str], python: bool) -> tuple[Spec, list[str]]:
    """The spec without what its included files declare, and the include list to write; a Python spec includes
    only functions, config and inputs, so where an included file holds blocks or mixins the Python file gets
    everything inline and no include."""
    if not includes or python and any(b.location.file != spec.path for b in spec.blocks):
        return spec, []
    own = lambda decls: tuple(d for d in decls if d.location.file == spec.path)  # noqa: E731
    return dataclasses.replace(spec, config=own(spec.config), inputs=own(spec.inputs), functions=own(spec.functions),
                               blocks=own(spec.blocks)), list(includes)


def to_python(spec: Spec, includes: Sequence[str] = ()) -> str:
    terms = {t.name for b in spec.blocks for t in b.terms}
    values = set(spec.config_by_name) | set(spec.inputs_by_name)
    spec, include = _own_part(spec, includes, python=True)
    class_names = _class_names(spec)
    uses_mixin = any(b.kind == "mixin" for b in spec.blocks)
    uses_term = any(t.shape is not None or t.math is not None or t.is_new or t.is_probe or t.writes_into or t.parts
                    for b in spec.blocks for t in b.terms)
    markers = [name for name, used in (("mixin", uses_mixin), ("term", uses_term)) if used]
    out: list[str] = []
    if spec.doc:
        out.append(docstring(spec.doc, 0))
    out.append("import math\nfrom typing import Dict, List, Optional, Tuple\n\nimport torch\n"
               "import torch.nn.functional as F\nfrom torch import Tensor\n\nfrom omgen import OutputMath\n")
    if markers:
        out.append(f"from omgen.markers import {', '.join(markers)}\n")
    out.append(f"\nom = {py_string(spec.om)}\n")
    if include:
        out.append(f"include = {py_literal(include)}\n")
    if spec.inputs:
        inputs = {}
        for decl in spec.inputs:
            fields: dict[str, Any] = {}
            if decl.type != "Tensor":
                fields["type"] = decl.type
            if decl.shape is not None:
                fields["shape"] = list(decl.shape)
            fields["dtype"] = decl.dtype
            fields["role"] = decl.role
            if decl.doc:
                fields["doc"] = decl.doc
            inputs[decl.name] = fields
        out.append("\ninputs = " + py_literal(inputs) + "\n")
    for function in spec.functions:
        args = ", ".join(f"{name}: {type_}" for name, type_ in function.args)
        out.append(f"\n\ndef {function.name}({args}) -> {function.returns}:\n")
        if function.doc:
            out.append(docstring(function.doc, 4))
        out.append(textwrap.indent(function.code.source, "    ", lambda line: bool(line.strip())))
    compose_written = False
    root = "OutputMath"
    if spec.config:
        root = class_names[""]
        lines = [f"\n\nclass {root}(OutputMath):\n", '    """Config values (constructor arguments of the generated modules)."""\n\n']
        for decl in spec.config:
            lines.append(f"    {decl.name}: {decl.type} = "
                         f"{py_literal(decl.default, 4 + len(decl.name) + len(decl.type) + 5)}\n")
            if decl.doc:
                lines.append(docstring(decl.doc, 4))
        out.append("".join(lines))
    for block in _ordered_blocks(spec):
        if block.kind == "mixin" and not compose_written:
            out.append(f"\n\ncompose = [{', '.join(class_names[b] for b in spec.compose)}]\n")
            compose_written = True
        out.append("\n\n")
        if block.kind == "mixin":
            name = class_names[block.name]
            out.append("@mixin\n" if name == block.name else f"@mixin({py_string(block.name)})\n")
        bases = ", ".join(class_names.get(b, b) for b in block.bases) or root
        out.append(f"class {class_names[block.name]}({bases}):\n")
        members: list[str] = []
        if block.doc:
            members.append(docstring(block.doc, 4))
        for term in split_parts(block):
            members.append(_method(term, terms, values))
        out.append("\n".join(members) if members else "    pass\n")
    if not compose_written:
        out.append(f"\n\ncompose = [{', '.join(class_names[b] for b in spec.compose)}]\n")
    variants: dict[str, Any] = {}
    for variant in spec.variants:
        mixins = [_Raw(class_names.get(m, m)) for m in variant.mixins]
        if variant.config or variant.doc:
            entry: dict[str, Any] = {"mixins": mixins}
            if variant.config:
                entry["config"] = {name: value for name, value, _ in variant.config}
            if variant.doc:
                entry["doc"] = variant.doc
            variants[variant.name] = entry
        else:
            variants[variant.name] = mixins
    out.append("\n\nvariants = " + py_literal(variants) + "\n")
    entrypoints: dict[str, Any] = {}
    for entrypoint in spec.entrypoints:
        outputs = list(entrypoint.outputs)
        fields: dict[str, Any] = {"outputs": outputs}
        if entrypoint.doc:
            fields["doc"] = entrypoint.doc
        if entrypoint.per_image:
            layout: dict[str, Any] = {"numbers": dict(entrypoint.numbers)} if entrypoint.numbers else {}
            if entrypoint.forward_batch:
                layout["forward"] = "batch"
            fields["per_image"] = layout or True
        entrypoints[entrypoint.name] = fields if len(fields) > 1 else outputs
    out.append("\nentrypoints = " + py_literal(entrypoints) + "\n")
    return "".join(out)


def _parts_value(term: TermDef) -> list[str] | dict[str, dict[str, Any]]:
    """A term's ``outputs`` as written: part names, or part name -> its non-empty fields."""
    fields = {}
    for part in term.parts:
        given = {"type": part.type, "shape": list(part.shape) if part.shape is not None else None,
                 "math": part.math, "doc": part.doc or None, "probe": part.is_probe or None}
        fields[part.name] = {k: v for k, v in given.items() if v is not None}
    if not any(fields.values()):
        return list(fields)
    return fields


def _method(term: TermDef, terms: set[str], values: set[str]) -> str:
    lines = []
    decorator = []
    if term.shape is not None:
        decorator.append(f"shape={py_literal(list(term.shape))}")
    if term.math is not None:
        decorator.append(f"math={py_string(term.math)}")
    if term.is_new:
        decorator.append("new=True")
    if term.is_probe:
        decorator.append("probe=True")
    if term.writes_into:
        decorator.append("into=True")
    if term.parts:
        decorator.append(f"outputs={py_literal(_parts_value(term))}")
    if decorator:
        lines.append(f"    @term({', '.join(decorator)})\n")
    returns = f" -> {term.type}" if term.type is not None else ""
    lines.append(f"    def {term.name}(self){returns}:\n")
    if term.doc:
        lines.append(docstring(term.doc, 8))
    body = method_body(term.code, term.name, terms, values | (set(INTO_NAMES) if term.writes_into else set()))
    lines.append(textwrap.indent(body, " " * 8, lambda line: bool(line.strip())))
    return "".join(lines)


# ----------------------------------------------------------------------------- Python (or YAML) → YAML


def to_yaml(spec: Spec, includes: Sequence[str] = ()) -> str:
    spec, include = _own_part(spec, includes, python=False)
    out: list[str] = [f"om: {_y(spec.om)}\n"]
    if spec.doc:
        out.append(f"doc: {_y(spec.doc)}\n")
    if include:
        out.append(f"include: {_y(include)}\n")
    if spec.config:
        out.append("config:\n")
        for decl in spec.config:
            fields = {"type": decl.type, "default": decl.default}
            if decl.doc:
                fields["doc"] = decl.doc
            out.append(f"  {decl.name}: {_y(fields)}\n")
    if spec.inputs:
        out.append("inputs:\n")
        for decl in spec.inputs:
            fields: dict[str, Any] = {"type": decl.type}
            if decl.shape is not None:
                fields["shape"] = list(decl.shape)
            fields.update(dtype=decl.dtype, role=decl.role)
            if decl.doc:
                fields["doc"] = decl.doc
            out.append(f"  {decl.name}: {_y(fields)}\n")
    if spec.functions:
        out.append("functions:\n")
        for function in spec.functions:
            out.append(f"  {function.name}:\n")
            if function.doc:
                out.append(f"    doc: {_y(function.doc)}\n")
            out.append(f"    args: {_y(dict(function.args))}\n    returns: {_y(function.returns)}\n")
            out.append(_y_code(function.code, 4))
    for kind, key in (("block", "blocks"), ("mixin", "mixins")):
        blocks = [b for b in spec.blocks if b.kind == kind]
        if kind == "mixin":
            out.append(f"compose: {_y(list(spec.compose))}\n")
        if not blocks:
            continue
        out.append(f"{key}:\n")
        for block in blocks:
            if not (block.doc or block.bases or block.terms):
                out.append(f"  {block.name}: {{}}\n")
                continue
            out.append(f"  {block.name}:\n")
            if block.doc:
                out.append(f"    doc: {_y(block.doc)}\n")
            if block.bases:
                out.append(f"    bases: {_y(list(block.bases))}\n")
            if block.terms:
                out.append("    terms:\n")
            for term in split_parts(block):
                out.append(f"      {term.name}:\n")
                if term.is_new:
                    out.append("        new: true\n")
                if term.is_probe:
                    out.append("        probe: true\n")
                if term.writes_into:
                    out.append("        into: true\n")
                for field in ("type", "shape", "math", "doc"):
                    value = getattr(term, field)
                    if value:
                        out.append(f"        {field}: {_y(list(value) if field == 'shape' else value)}\n")
                    elif field == "shape" and value == ():
                        out.append("        shape: []\n")
                if term.parts:
                    out.append(f"        outputs: {_y(_parts_value(term))}\n")
                out.append(_y_code(term.code, 8))
    out.append("variants:\n")
    for variant in spec.variants:
        if variant.config or variant.doc:
            out.append(f"  {variant.name}:\n")
            if variant.doc:
                out.append(f"    doc: {_y(variant.doc)}\n")
            out.append(f"    mixins: {_y(list(variant.mixins))}\n")
            if variant.config:
                out.append(f"    config: {_y({n: v for n, v, _ in variant.config})}\n")
        else:
            out.append(f"  {variant.name}: {_y(list(variant.mixins))}\n")
    out.append("entrypoints:\n")
    for entrypoint in spec.entrypoints:
        if entrypoint.doc or entrypoint.per_image:
            out.append(f"  {entrypoint.name}:\n    outputs: {_y(list(entrypoint.outputs))}\n")
            if entrypoint.doc:
                out.append(f"    doc: {_y(entrypoint.doc)}\n")
            if entrypoint.numbers or entrypoint.forward_batch:
                out.append("    per_image:\n")
                if entrypoint.numbers:
                    out.append(f"      numbers: {_y(dict(entrypoint.numbers))}\n")
                if entrypoint.forward_batch:
                    out.append("      forward: batch\n")
            elif entrypoint.per_image:
                out.append("    per_image: true\n")
        else:
            out.append(f"  {entrypoint.name}: {_y(list(entrypoint.outputs))}\n")
    return "".join(out)


def _y(value: Any) -> str:
    import yaml

    # Unicode stays readable (Greek letters in math), except where some text is not printable: PyYAML would write
    # NEL, U+2028 and friends raw, and a YAML reader folds them into spaces; then everything is escaped.
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=_printable(value),
                          sort_keys=False)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return text


def _printable(value: Any) -> bool:
    if isinstance(value, str):
        return all(c.isprintable() or c == "\n" for c in value)
    if isinstance(value, dict):
        return all(_printable(k) and _printable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_printable(v) for v in value)
    return True


def _y_code(code: Code, indent: int) -> str:
    pad = " " * indent
    source = code.source
    if source.count("\n") == 1 and source.startswith("return ") and not source.startswith("return (") \
            and "#" not in source:
        return f"{pad}expr: {_y(source[len('return '):].strip())}\n"
    return f"{pad}body: |\n" + textwrap.indent(source, pad + "  ", lambda line: bool(line.strip()))
