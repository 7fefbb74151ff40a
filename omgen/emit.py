"""Emission: one term DAG → the source of one generated module.

Each step turns one part of the graph into a small view (strings and
lists); the jinja2 template lays them out. Bodies go through libcst
rewrites only (rewrite.py), never through string splicing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib

from typing import Iterable, Mapping

import jinja2

from .analyse import AnalysedTerm, DefinitionInfo, TermGraph
from .model import SIZE, ConfigDecl, EntrypointDecl, InputDecl, Spec
from .literals import comment_lines, comment_text, docstring, pyrepr as _pyrepr
from .names import IMPORT_BLOCK, INTO, NUMBER_FROM
from .rewrite import render_def
from .shapes import emitted_size, is_expression

COMMENT_COLUMN_MAX = 60
#: The parameter of an `into: true` term's method: None unless a per_image entrypoint holds the image's slice.
INTO_PARAM = (INTO, "Optional[Tensor] = None")
#: The parameter of an `into: true` term's method that numbers its own values (0: the batch's numbering).
NUMBER_FROM_PARAM = (NUMBER_FROM, "int = 0")


@dataclasses.dataclass(frozen=True)
class Header:
    spec_path: str
    digest: str
    om: str
    variant: str
    mixins: tuple[str, ...]
    composition: str
    doc: str
    config: dict
    variant_config: dict  # the values that differ from the spec's defaults (the variant's config and --set)


def spec_digest(spec: Spec, extra: str = "") -> str:
    """Hash of every source file of the spec (and the command-line overrides)."""
    joined = "".join(f"{path}\n{sha}\n" for path, sha in spec.sources) + extra
    return hashlib.sha256(joined.encode()).hexdigest()


def emit_module(graph: TermGraph, overrides_text: str = "") -> str:
    """The generated module of one variant."""
    spec = graph.spec
    configs = [_config_view(c, graph.om.config[c.name]) for c in spec.config]
    header = _header(graph, overrides_text)
    entrypoints = [_entrypoint_view(graph, e) for e in spec.entrypoints]
    numbers = [n for e in entrypoints if e["per_image"] for n in e["per_image"]["numbers"]]
    return _template().render(
        header=header,
        import_block=IMPORT_BLOCK,
        inputs=[_input_view(i) for i in spec.inputs],
        has_size_inputs=any(i.type == SIZE for i in spec.inputs),
        has_per_image=any(e.per_image for e in spec.entrypoints),
        has_numbers=any(e.numbers for e in spec.entrypoints),
        has_numbers_into=any(n["into"] and not n["itself"] for n in numbers),
        has_into=any(e["per_image"] and e["per_image"]["into"] for e in entrypoints),
        terms=[_term_source_view(t) for t in graph.terms],
        functions=[_function_source(spec, spec.functions_by_name[f]) for f in graph.used_functions],
        configs=configs,
        methods=[_method_source(graph, term, info) for term in graph.terms for info in term.definitions],
        entrypoints=entrypoints,
        session=_session_view(graph),
    )


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("omgen", "templates"), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["pyrepr"] = _pyrepr
    env.filters["comment"] = comment_text
    env.filters["comment_block"] = lambda text: "\n".join(comment_lines(text, "# "))
    env.filters["docstring"] = docstring
    return env.get_template("module.py.jinja2")


def _header(graph: TermGraph, overrides_text: str) -> Header:
    spec, variant = graph.spec, graph.om.variant
    composition = "base" + "".join(f" + {m}" for m in variant.mixins)
    if overrides_text:
        composition += f"; --set {overrides_text}"
    doc = " ".join((spec.doc or f"Output mathematics '{spec.om}'.").split())
    config = dict(graph.om.config)
    defaults = spec.config_by_name
    changed = {name: value for name, value in config.items() if value != defaults[name].default}
    return Header(spec.path, spec_digest(spec, overrides_text)[:16], spec.om, variant.name, variant.mixins, composition,
                  doc, config, changed)


def _config_view(config: ConfigDecl, value: object) -> dict:
    if config.type.startswith("List["):
        param = f"{config.name}: Optional[{config.type}] = None"
        assign = f"{_pyrepr(list(value))} if {config.name} is None else list({config.name})"  # type: ignore[arg-type]
    else:
        param = f"{config.name}: {config.type} = {_pyrepr(value)}"
        assign = f"{config.type}({config.name})" if config.type == "float" else config.name
    return {"name": config.name, "type": config.type, "param": param, "assign": assign}


def _input_view(decl: InputDecl) -> dict:
    shape_text = "[" + ", ".join(str(d) for d in decl.shape) + "]" if decl.shape is not None else "any"
    return {"name": decl.name, "type": decl.type, "shape_text": shape_text, "dtype": decl.dtype, "role": decl.role}


def _term_source_view(term: AnalysedTerm) -> dict:
    winner = term.term.winner
    return {"name": term.name, "source": f"{winner.location.file}:{winner.location.line} ({winner.owner})"}


def _function_source(spec: Spec, function) -> str:
    return render_def(function.code, function.name, tuple(function.args), function.returns, method=False,
                      docstring=function.doc)


def _method_source(graph: TermGraph, term: AnalysedTerm, info: DefinitionInfo) -> str:
    types = graph.value_types
    params = tuple((p, types[p]) for p in info.params)
    if info.definition.writes_into:
        params += (INTO_PARAM,)
    if info.reads_number_from:
        params += (NUMBER_FROM_PARAM,)
    super_call = None
    if info.super_method:
        below = next(d for d in term.definitions if d.method == info.super_method)
        super_call = f"self.{below.method}({', '.join(below.params)})"
    comments = _provenance_lines(term, info)
    source = render_def(info.definition.code, info.method, params, term.term.type, config=frozenset(info.config),
                        super_call=super_call, method=True, docstring=info.definition.doc if info.method == term.name else "",
                        indent=4)
    lines = [wrapped for line in comments for wrapped in comment_lines(line, "    # ")]
    return "\n".join(lines) + "\n" + source.rstrip("\n")


def _provenance_lines(term: AnalysedTerm, info: DefinitionInfo) -> list[str]:
    definition = info.definition
    chain = term.term.chain
    position = chain.index(definition)
    where = f"{definition.owner} ({definition.location.file}:{definition.location.line})"
    if position == 0:
        text = f"{term.name}: {term.term.type}"
        if term.term.shape:
            text += " [" + ", ".join(str(d) for d in term.term.shape) + "]"
        lines = [f"{text} — {where}"]
        if len(chain) > 1:
            lines[0] += f", overrides {chain[1].owner}"
    else:
        lines = [f"{term.name} as defined by {where}, reached by super() from {chain[position - 1].owner}"]
    math_lines = (term.term.math or "").strip().splitlines() if position == 0 else []
    if math_lines:
        lines += [f"math: {math_lines[0]}"] + [f"      {line}" for line in math_lines[1:]]
    return lines


def _entrypoint_view(graph: TermGraph, entrypoint: EntrypointDecl) -> dict:
    order = graph.needed_for(entrypoint.outputs)
    inputs = graph.spec.inputs_by_name
    needed_inputs = [i for i in graph.spec.inputs if i.name in order]
    params = [f"{i.name}: {i.value_type}" for i in needed_inputs]
    checks = [_input_check(i, graph.om.config) for i in needed_inputs if i.type in ("Tensor", SIZE)]
    terms = [name for name in order if name not in inputs]
    freed_after = _freed_after(graph, terms, entrypoint.outputs)
    layout = _per_image_layout(graph, entrypoint, needed_inputs) if entrypoint.per_image else {}
    into = set(layout.get("into", ()))
    number_from = {n["output"]: n["param"] for n in layout.get("numbers", ()) if n["itself"]}
    steps = []
    for position, name in enumerate(terms):
        term = graph.by_name[name]
        winner = term.term.winner
        args = list(term.params) + ([f"{INTO}=_into.get({_pyrepr(name)})"] if name in into else [])
        args += [f"{NUMBER_FROM}={number_from[name]}"] if name in number_from else []
        code = f"{name} = self.{name}({', '.join(args)})"
        comment = winner.owner + (f", overrides {term.term.chain[1].owner}" if len(term.term.chain) > 1 else "")
        steps.append({"code": code, "comment": comment})
        steps.extend({"code": code, "comment": "last use: freed"}
                     for code in _del_statements(freed_after.get(position, [])))
    column = min(max((len(s["code"]) for s in steps), default=0), COMMENT_COLUMN_MAX)
    tensors = [i.name for i in needed_inputs if i.type == "Tensor"]
    per_image = {}
    if entrypoint.per_image:
        one = [f"{i.name}[_i : _i + 1]" if i.type == "Tensor" else i.name for i in needed_inputs]
        batch_args = ", ".join(i.name for i in needed_inputs)
        extra = (["_into"] if into else []) + [p["offset"] for p in layout["from_params"]]
        per_image = {"batch": tensors[0], "image_args": ", ".join(one), "batch_args": batch_args,
                     "image_call": ", ".join([batch_args, *extra]),
                     "batch_call": ", ".join([batch_args] + (["{}"] if into else []) + ["0"] * len(layout["from_params"])),
                     "extra_params": (["_into: Dict[str, Tensor]"] if into else [])
                     + [f"{p['name']}: int" for p in layout["from_params"]],
                     "forward_batch": entrypoint.forward_batch, **layout}
    return {"name": entrypoint.name, "class_name": entrypoint.class_name, "doc": entrypoint.doc,
            "per_image": per_image,
            "outputs": entrypoint.outputs, "params": params, "param_names": [i.name for i in needed_inputs],
            "dict_callable": all(i.type == "Tensor" for i in needed_inputs),
            "checks": checks, "steps": steps,
            "comment_column": column}


def _per_image_layout(graph: TermGraph, entrypoint: EntrypointDecl, needed_inputs: list[InputDecl]) -> dict:
    """How one image's results make the batch's: outputs that start with the batch size are written into image
    _i's slice, the others (rows: instances, boxes) are concatenated; numbered outputs are offset first, by the
    image's number or by the rows of the images before it (analyse checked the sizes)."""
    batch = next(i.shape[0] for i in needed_inputs if i.type == "Tensor")
    firsts = {name: graph.by_name[name].term.shape[0] for name in entrypoint.outputs}
    rows = {}
    for name in entrypoint.outputs:
        if firsts[name] != batch:
            rows.setdefault(firsts[name], name)
    offsets = {size: ("_i" if size == batch else f"_rows_{size}") for _, size in entrypoint.numbers}
    sliced = [n for n in entrypoint.outputs if firsts[n] == batch]
    # a numbered output that other terms of the entrypoint read keeps the image's own numbers while they run and
    # is not renumbered in place under them (a view of it would be numbered twice): made and numbered by a copy
    read = {p for name in graph.needed_for(entrypoint.outputs) if name in graph.by_name
            for p in graph.by_name[name].params}
    numbered = {output for output, _ in entrypoint.numbers}
    held = [n for n in sliced if graph.by_name[n].writes_into and not (n in numbered and n in read)]
    itself = {output for output in numbered if graph.by_name[output].numbers_itself and output not in read}
    from_sizes = sorted({size for output, size in entrypoint.numbers if output in itself})
    return {"sliced": sliced,
            "from_params": [{"name": f"_from_{size}", "offset": offsets[size]} for size in from_sizes],
            "into": held,
            "rows": [n for n in entrypoint.outputs if firsts[n] != batch],
            "row_counts": [{"local": offsets[size], "size": size, "output": rows[size]}
                           for size in sorted(set(offsets) - {batch})],
            "numbers": [{"output": output, "size": size, "offset": offsets[size], "param": f"_from_{size}",
                         "itself": output in itself, "into": output in held}
                        for output, size in entrypoint.numbers]}


def _freed_after(graph: TermGraph, terms: list[str], outputs: Iterable[str]) -> dict[int, list[str]]:
    """Step position -> the terms (in step order) that no later step reads and the entrypoint does not return: a
    full-size map is released as soon as nothing needs it, so the peak memory is the order's widest point, not
    the sum. Nothing is freed after the last step: the return releases the rest."""
    kept = set(outputs)
    last: dict[str, int] = {}
    for position, name in enumerate(terms):
        for param in graph.by_name[name].params:
            if param in graph.by_name and param not in kept:
                last[param] = position
    freed: dict[int, list[str]] = {}
    for name in terms:  # step order
        if name in last and last[name] < len(terms) - 1:
            freed.setdefault(last[name], []).append(name)
    return freed


def _del_statements(names: list[str]) -> list[str]:
    """`del a, b` statements no longer than the comment column (one statement per line, never wrapped)."""
    statements: list[str] = []
    for name in names:
        if statements and len(statements[-1]) + len(name) + 2 <= COMMENT_COLUMN_MAX:
            statements[-1] += f", {name}"
        else:
            statements.append(f"del {name}")
    return statements


def _input_check(decl: InputDecl, config: Mapping[str, object]) -> str:
    if decl.shape is None:
        return _labelled_check(decl, '"any"', f"[-1] * {decl.name}.dim()", f'[""] * {decl.name}.dim()')
    size_items, symbol_items = [], []
    for dim in decl.shape:
        if isinstance(dim, int):
            size_items.append(str(dim))
            symbol_items.append('""')
        elif dim in config or is_expression(dim):
            size_items.append(emitted_size(dim, set(config)))
            symbol_items.append('""')
        else:
            size_items.append("-1")
            symbol_items.append(_pyrepr(dim))
    expected = "[" + ", ".join(str(d) for d in decl.shape) + "]"
    return _labelled_check(decl, _pyrepr(expected), f"[{', '.join(size_items)}]", f"[{', '.join(symbol_items)}]")


def _labelled_check(decl: InputDecl, expected: str, sizes: str, symbols: str) -> str:
    """One _check_input (_check_sizes for a size input) call with labelled arguments (format.py wraps it)."""
    if decl.type == SIZE:
        return (f"_check_sizes({_pyrepr(decl.name)}, {decl.name}, expected={expected}, sizes={sizes}, "
                f"symbols={symbols}, dims=_dims)")
    return (f"_check_input({_pyrepr(decl.name)}, {decl.name}, expected={expected}, sizes={sizes}, "
            f"symbols={symbols}, dims=_dims, dtype={_pyrepr(decl.dtype)})")


def _session_view(graph: TermGraph) -> dict:
    slots = [{"name": i.name, "type": i.value_type, "is_input": True, "params": ()} for i in graph.spec.inputs]
    slots += [{"name": t.name, "type": t.term.type, "is_input": False, "params": t.params} for t in graph.terms]
    return {"slots": slots, "inputs": graph.spec.inputs}
