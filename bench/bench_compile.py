"""Benchmark of the compiler on a synthetic spec: 300 terms, 10 variants (mixins overriding with super()).

    python bench/bench_compile.py [--repeat 5] [--terms 300] [--variants 10] [--profile FILE]

Times, each beside a baseline measured in the same run (absolute times are
noisy on a shared machine):

- in-process `compile_spec` + `write` into a temporary folder, best and median
  of --repeat runs (libcst's body cache cleared before each, so every run
  parses every body), against `yaml.safe_load` of the same spec text;
- a cold `omgen compile SPEC -o DIR` process, against `python -c pass`;
- the import of the compiler (`import omgen.cli`) in a fresh process, against
  `python -c pass`, with the slowest imports from `python -X importtime`.

Checks that the compiler never imports torch (in this process, which never
imports it, and in a fresh process that imports and runs it). With
--profile, writes the top functions of a cProfile of one compile to FILE.
Prints the markdown rows of the "Compiler" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import omgen  # noqa: E402

GOAL_S = 0.5


def synthetic_spec(terms: int = 300, variants: int = 10, seed: int = 0) -> dict:
    """A layered OM: 10 blocks in a chain of bases, terms depending on earlier ones, mixins with super()."""
    rng = random.Random(seed)
    inputs = {f"x{i}": {"type": "Tensor", "shape": ["N", "C"], "dtype": "float", "role": "prediction"}
              for i in range(4)}
    config = {"alpha": {"type": "float", "default": 0.5}, "beta": {"type": "float", "default": 2.0},
              "steps": {"type": "int", "default": 3}}
    block_count = 10
    per_block = terms // block_count
    blocks: dict = {}
    names: list[str] = []
    for b in range(block_count):
        block_terms = {}
        for _ in range(per_block):
            k = len(names)
            deps = rng.sample(names[-40:], min(len(names[-40:]), rng.randint(1, 3))) if names else []
            deps.append(f"x{k % 4}")
            expr = " + ".join(f"{rng.choice(['alpha', 'beta', '0.5'])} * {d}" for d in deps)
            if k % 7 == 0:
                body = f"h = torch.tanh({expr})\nif steps > 2:\n    h = h * 0.5\nreturn h + {deps[0]}\n"
                block_terms[f"t{k}"] = {"doc": f"Term {k}.", "shape": ["N", "C"], "body": body}
            else:
                block_terms[f"t{k}"] = {"math": f"t_{{{k}}} := \\tanh(\\ldots)", "expr": f"torch.tanh({expr})"}
            names.append(f"t{k}")
        blocks[f"Layer{b}"] = {"doc": f"Layer {b}.", "bases": [f"Layer{b - 1}"] if b else [], "terms": block_terms}
    mixins: dict = {}
    for m in range(2 * variants):
        overridden = rng.sample(names[1:], 12)
        mixins[f"mix-{m}"] = {"doc": f"Mixin {m}.", "terms": {
            t: {"expr": f"super() * alpha + {names[rng.randrange(0, int(t[1:]))]}"} for t in overridden}}
    variant_table: dict = {"base": []}
    for v in range(1, variants):
        chosen = rng.sample(sorted(mixins), rng.randint(2, 4))
        variant_table[f"variant-{v}"] = {"mixins": chosen, "config": {"alpha": 0.25}} if v % 3 == 0 else chosen
    entrypoints = {"train": names[-10:], "infer": {"outputs": names[-30:-20], "doc": "Decoding."},
                   "debug": names[len(names) // 2:len(names) // 2 + 5]}
    return {"om": "synthetic", "doc": "Synthetic OM for the compiler benchmark.", "config": config,
            "inputs": inputs, "blocks": blocks, "compose": [f"Layer{block_count - 1}"], "mixins": mixins,
            "variants": variant_table, "entrypoints": entrypoints}


def clear_caches() -> None:
    """Forget memoised body parses so that each run does the whole work (a fresh compile would)."""
    for module_name in ("omgen.bodies", "omgen.rewrite", "omgen.analyse", "omgen.emit"):
        module = sys.modules.get(module_name)
        for value in vars(module).values() if module else ():
            ours = getattr(value, "__module__", "") == module_name and getattr(value, "__name__", "") != "_template"
            if ours and hasattr(value, "cache_clear"):
                value.cache_clear()


class Times:
    """Wall-clock and CPU seconds of repeated runs (CPU time is steadier on a shared machine)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)


def timed(fn, repeat: int, before=None) -> Times:
    times = Times()
    for _ in range(repeat):
        if before:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.cpu.append(time.process_time() - cpu)
        times.wall.append(time.perf_counter() - wall)
    return times


def run_process(args: list[str], repeat: int) -> Times:
    """Wall time of a child process, and its CPU time (user + system, from the child's rusage)."""
    times = Times()
    for _ in range(repeat):
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        times.wall.append(time.perf_counter() - start)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode, args)
        times.cpu.append(usage.ru_utime + usage.ru_stime)
    return times


def slowest_imports(top: int = 6) -> tuple[float, list[tuple[float, str]]]:
    """(cumulative µs of omgen.cli, [(cumulative µs, module)] of its slowest top-level dependencies)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import omgen.cli"], capture_output=True,
                            text=True, check=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((int(cumulative), name.strip()))
    total = next(c for c, name in rows if name == "omgen.cli")
    packages = {}  # top-level packages other than omgen: their first (cumulative) import
    for cumulative, name in rows:
        if "." not in name and not name.startswith("omgen"):
            packages.setdefault(name, cumulative)
    return total, sorted(((c, n) for n, c in packages.items()), reverse=True)[:top]


def phase_times(spec_path: Path, out: Path) -> dict[str, float]:
    """Seconds per stage of one compile (caches cleared first), through the stages compile_spec chains."""
    from omgen.analyse import analyse, check_functions
    from omgen.compile import CompileResult, GeneratedFile, load
    from omgen.emit import emit_module
    from omgen.resolve import resolve

    clear_caches()
    times: dict[str, float] = {}

    def stage(name: str, fn, *args):
        start = time.perf_counter()
        value = fn(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        return value

    spec = stage("load (YAML → Spec)", load, spec_path)
    try:
        from omgen.validate import validate_spec
    except ImportError:  # older compilers: no spec-wide validation stage
        validate_spec = None
    if validate_spec is not None:
        stage("validate", validate_spec, spec)
    stage("check_functions", check_functions, spec)
    graphs = []
    for variant in spec.variants:
        resolved = stage("resolve (C3, chains)", resolve, spec, variant, {})
        graphs.append(stage("analyse (libcst read, DAG, checks)", analyse, resolved))
    sources = [stage("emit (rewrite bodies, template)", emit_module, graph, "") for graph in graphs]
    files = tuple(GeneratedFile(out / spec.om / f"{g.om.variant.module_name}.py", s) for g, s in zip(graphs, sources))
    stage("write", omgen.write, CompileResult(spec, tuple(graphs), files, ()))
    return times


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--terms", type=int, default=300)
    parser.add_argument("--variants", type=int, default=10)
    parser.add_argument("--profile", type=Path, default=None, help="write the cProfile top functions here")
    args = parser.parse_args()

    spec = synthetic_spec(args.terms, args.variants)
    text = yaml.safe_dump(spec, sort_keys=False, width=120)
    with tempfile.TemporaryDirectory(prefix="omgen-bench-") as tmp:
        tmp = Path(tmp)
        spec_path = tmp / "synthetic.yaml"
        spec_path.write_text(text)
        out = tmp / "generated"

        def compile_and_write() -> None:
            omgen.write(omgen.compile_spec(spec_path, out=out))

        first = timed(compile_and_write, 1)  # imports libcst/jinja2 lazily, builds the template
        result = omgen.compile_spec(spec_path, out=out)
        definitions = sum(len(t.definitions) for g in result.graphs for t in g.terms)
        lines = sum(f.source.count("\n") for f in result.files)
        in_process = timed(compile_and_write, args.repeat, before=clear_caches)
        warm = timed(compile_and_write, args.repeat)
        load_yaml = timed(lambda: yaml.safe_load(text), args.repeat)

        omgen_exe = [sys.executable, "-c", "import sys; from omgen.cli import main; sys.exit(main())"]
        cold = run_process(omgen_exe + ["compile", str(spec_path), "-o", str(tmp / "cold"), "-q"], args.repeat)
        python_pass = run_process([sys.executable, "-c", "pass"], args.repeat)
        import_cli = run_process([sys.executable, "-c", "import omgen.cli"], args.repeat)
        torch_check = subprocess.run(
            [sys.executable, "-c", "import sys, omgen, omgen.cli; "
             f"omgen.write(omgen.compile_spec({str(spec_path)!r}, out={str(tmp / 'check')!r})); "
             "print('torch' in sys.modules)"], capture_output=True, text=True, check=True).stdout.strip()
        cli_us, imports = slowest_imports()
        phases = min((phase_times(spec_path, tmp / f"phases{i}") for i in range(args.repeat)),
                     key=lambda t: sum(t.values()))

        if args.profile:
            clear_caches()
            profiler = cProfile.Profile()
            profiler.enable()
            compile_and_write()
            profiler.disable()
            stream = io.StringIO()
            stats = pstats.Stats(profiler, stream=stream)
            stats.sort_stats("cumulative").print_stats(35)
            stats.sort_stats("tottime").print_stats(25)
            args.profile.parent.mkdir(parents=True, exist_ok=True)
            args.profile.write_text(stream.getvalue().replace(str(ROOT) + "/", "").replace(str(tmp), "<tmp>"))

    torch_here = "torch" in sys.modules
    n = args.repeat
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"spec: {args.terms} terms, {len(spec['mixins'])} mixins, {len(spec['variants'])} variants, "
          f"{len(spec['entrypoints'])} entrypoints; {len(text)} bytes of YAML; "
          f"{definitions} emitted methods, {lines} generated lines")
    print(f"torch in sys.modules after compiling: this process {torch_here}, fresh process {torch_check}")
    assert not torch_here and torch_check == "False", "the compiler imported torch"
    print()
    print("| what | wall, best (median) | CPU, best | baseline, same run: wall / CPU | ratio wall / CPU |")
    print("| --- | --- | --- | --- | --- |")

    def row(what: str, times: Times, base_what: str, base: Times) -> None:
        print(f"| {what} | {fmt(times.best)} ({fmt(times.median)}) | {fmt(times.best_cpu)} | {base_what} "
              f"{fmt(base.best)} / {fmt(base.best_cpu)} | {times.best / base.best:.1f}× / "
              f"{times.best_cpu / base.best_cpu:.1f}× |")

    row(f"`compile_spec` + `write` in process, caches cleared (of {n})", in_process, "`yaml.safe_load` of the spec",
        load_yaml)
    row(f"same, body caches warm (of {n})", warm, "`yaml.safe_load`", load_yaml)
    row("first compile in a process (lazy imports, template)", first, "`yaml.safe_load`", load_yaml)
    row(f"`omgen compile` in a cold process (of {n})", cold, "`python -c pass`", python_pass)
    row(f"`import omgen.cli` in a cold process (of {n})", import_cli, "`python -c pass`", python_pass)
    print()
    print(f"-X importtime, omgen.cli cumulative {cli_us / 1000:.0f} ms; slowest imports: "
          + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in imports))
    print("stages of one compile (the fastest of --repeat): "
          + ", ".join(f"{name} {fmt(t)}" for name, t in phases.items()))
    verdict = "meets" if in_process.best < GOAL_S else "MISSES"
    print(f"goal: in-process compile < {GOAL_S} s: {verdict} ({fmt(in_process.best)} wall, "
          f"{fmt(in_process.best_cpu)} CPU); cold process {fmt(cold.best)}")


if __name__ == "__main__":
    main()
