"""`omgen` command line. Exit status: 0 ok, 1 spec error (or stale output), 2 usage error.

Spec errors print as `file:line:col: error: message` lines, never a traceback.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Sequence

from .errors import SpecErrors
from .format import FormatError

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    specs = args.spec if isinstance(args.spec, list) else [args.spec]
    missing = [s for s in specs if not Path(s).is_file()]
    if missing:
        for spec in missing:
            print(f"{spec}: error: {'no such spec file' if not Path(spec).exists() else 'not a regular file'}",
                  file=sys.stderr)
        return EXIT_SPEC
    status = EXIT_OK
    for spec in specs:
        try:
            status = max(status, args.run(argparse.Namespace(**{**vars(args), "spec": spec})))
        except SpecErrors as exc:
            for diagnostic in exc.diagnostics:
                print(diagnostic, file=sys.stderr)
            count = len(exc.diagnostics)
            if count > 1:
                print(f"{count} errors", file=sys.stderr)
            status = EXIT_SPEC
        except BrokenPipeError:
            return status
        except FormatError as exc:  # the formatter missing or of another version: the message says what to install
            print(f"{spec}: error: {exc}", file=sys.stderr)
            status = EXIT_SPEC
        except (OSError, RecursionError, MemoryError) as exc:  # a limit or a file the checks did not foresee: still one line
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            print(f"{spec}: error: {reason}", file=sys.stderr)
            status = EXIT_SPEC
    return status


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="omgen", description="Compile output-mathematics specs into PyTorch modules.",
                                     epilog="Exit status: 0 ok, 1 spec error, missing spec or stale output, "
                                            "2 command-line usage error.")
    parser.add_argument("--version", action="version", version=f"omgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, run, several: bool = False) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        if several:
            command.add_argument("spec", nargs="+", help="spec files (.yaml or .py)")
        else:
            command.add_argument("spec", help="spec file (.yaml or .py)")
        command.set_defaults(run=run)
        return command

    def variant_options(command: argparse.ArgumentParser, several: bool) -> None:
        if several:
            command.add_argument("--variant", action="append", default=[], help="variant to compile (repeatable; default all)")
            command.add_argument("--mixin", action="append", default=[], help="compile an ad-hoc variant of these mixins")
        else:
            command.add_argument("--variant", default=None, help="variant (default: the first)")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")

    compile_cmd = add("compile", "Generate generated/<om>/<variant>.py for each variant.", _run_compile, several=True)
    variant_options(compile_cmd, several=True)
    compile_cmd.add_argument("-o", "--out", default=None, help="output folder (default: <project>/generated)")
    compile_cmd.add_argument("--check", action="store_true", help="write nothing; exit 1 if generated files are stale")
    compile_cmd.add_argument("--verify", action="store_true", help="import the result and torch.jit.script every module")
    compile_cmd.add_argument("-q", "--quiet", action="store_true", help="no warnings")

    check_cmd = add("check", "Check a spec (all variants) without writing anything.", _run_check, several=True)
    check_cmd.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    check_cmd.add_argument("--pure", action="store_true",
                           help="also refuse any `allow:` exception to the purity check (for CI of shared spec libraries)")

    graph_cmd = add("graph", "Print the term graph of a variant.", _run_graph)
    variant_options(graph_cmd, several=False)
    graph_cmd.add_argument("--format", choices=("dot", "mermaid", "svg"), default="dot",
                           help="Graphviz dot (default), Mermaid, or SVG (needs Graphviz's dot)")
    graph_cmd.add_argument("--entrypoint", default=None, help="only the terms this entrypoint needs")

    diff_cmd = add("diff", "Unified diff of the generated code of two variants (or, with --doc, their math sheets).", _run_diff)
    diff_cmd.add_argument("variant_a", help="the variant to diff from (e.g. base)")
    diff_cmd.add_argument("variant_b", help="the variant to diff to (e.g. oracle-all)")
    diff_cmd.add_argument("--doc", action="store_true", help="write an HTML sheet marking the terms that change")
    diff_cmd.add_argument("-o", "--out", default="docs/om", help="folder for --doc (default docs/om)")

    doc_cmd = add("doc", "Render each variant as a self-contained HTML math sheet with its term graph.", _run_doc)
    doc_cmd.add_argument("--variant", action="append", default=[], help="variant (repeatable; default all)")
    doc_cmd.add_argument("-o", "--out", default="docs/om", help="output folder (default docs/om)")

    convert_cmd = add("convert", "Convert a spec between YAML and Python (by the output's extension).", _run_convert)
    convert_cmd.add_argument("-o", "--out", required=True, help="output spec file (.py or .yaml)")

    explain_cmd = add("explain", "Explain one term: definition, super() chain, dependencies, users.", _run_explain)
    explain_cmd.add_argument("term", help="the term to explain (e.g. heat_loss)")
    variant_options(explain_cmd, several=False)
    return parser


def _print_warnings(warnings, quiet: bool = False) -> None:
    if not quiet:
        for warning in warnings:
            print(warning, file=sys.stderr)


def _print_trust(spec) -> None:
    """What a spec asks to be trusted with, always shown (never silenced by -q)."""
    from .errors import one_line
    from .purity import shipped_allowlist, version_note

    for allowance in spec.allowances:
        print(one_line(f"{allowance.location}: note: this spec is allowed '{allowance.name}' beyond the purity "
                       f"check: {allowance.reason}"), file=sys.stderr)
    note = version_note(shipped_allowlist())
    if note:
        print(f"omgen: note: {note}", file=sys.stderr)


def _compile_command(args: argparse.Namespace) -> str:
    """The command that rewrites what --check found stale: the same spec, output folder, variants and sets."""
    import shlex

    words = ["omgen", "compile", args.spec]
    if args.out:
        words += ["-o", args.out]
    for flag, values in (("--variant", args.variant), ("--mixin", args.mixin), ("--set", args.set)):
        for value in values:
            words += [flag, value]
    return shlex.join(words)


def _run_compile(args: argparse.Namespace) -> int:
    from .compile import compile_spec, stale, write

    result = compile_spec(args.spec, variants=args.variant, mixins=args.mixin, overrides=args.set, out=args.out)
    _print_trust(result.spec)
    _print_warnings(result.warnings, args.quiet)
    if args.check:
        problems = stale(result, all_variants=not args.variant and not args.mixin)
        for path, diff in problems:
            print(f"{path}: stale", file=sys.stderr)
            print(diff, end="", file=sys.stderr)
        if problems:
            print(f"{len(problems)} stale file(s): run `{_compile_command(args)}`", file=sys.stderr)
            return EXIT_SPEC
        print(f"{len(result.files)} file(s) up to date")
        return EXIT_OK
    changed = write(result)
    print(f"{args.spec}: {len(result.graphs)} variant(s) -> {result.files[0].path.parent} "
          f"({len(changed)} file(s) changed)")
    if args.verify:
        from .verify import verify_files
        for line in verify_files(result):
            print(line)
    return EXIT_OK


def _run_check(args: argparse.Namespace) -> int:
    from .compile import compile_spec

    result = compile_spec(args.spec, overrides=args.set)
    if args.pure and result.spec.allowances:
        from .errors import Diagnostic
        raise SpecErrors([Diagnostic(a.location, f"--pure: the spec allows '{a.name}' beyond the purity check",
                                     a.reason) for a in result.spec.allowances])
    _print_trust(result.spec)
    _print_warnings(result.warnings)
    terms = max(len(g.terms) for g in result.graphs)
    print(f"{args.spec}: ok ({len(result.graphs)} variant(s), {terms} terms, {len(result.warnings)} warning(s))")
    return EXIT_OK


def _graph_for(args: argparse.Namespace):
    from .compile import build_graph, load, parse_overrides, select_variants

    spec = load(args.spec)
    variant = select_variants(spec, [args.variant] if args.variant else [])[0]
    return build_graph(spec, variant, parse_overrides(args.set))


def _run_graph(args: argparse.Namespace) -> int:
    from .render_graph import render_graph

    graph = _graph_for(args)
    print(render_graph(graph, args.format, args.entrypoint), end="")
    return EXIT_OK


def _run_diff(args: argparse.Namespace) -> int:
    from .compile import compile_spec

    if args.doc:
        from .doc import write_diff_doc

        for line in write_diff_doc(args.spec, args.variant_a, args.variant_b, args.out):
            print(line)
        return EXIT_OK

    result = compile_spec(args.spec, variants=[args.variant_a, args.variant_b])
    a, b = result.files[0], result.files[1]
    sys.stdout.writelines(difflib.unified_diff(a.source.splitlines(True), b.source.splitlines(True),
                                               str(a.path.name), str(b.path.name)))
    return EXIT_OK


def _run_doc(args: argparse.Namespace) -> int:
    from .doc import write_docs

    for line in write_docs(args.spec, args.variant, args.out):
        print(line)
    return EXIT_OK


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    for line in convert(args.spec, args.out):
        print(line)
    return EXIT_OK


def _run_explain(args: argparse.Namespace) -> int:
    from .explain import explain

    print(explain(_graph_for(args), args.term), end="")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
