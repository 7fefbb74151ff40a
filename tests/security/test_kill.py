"""kill -9 during `omgen compile`: the package is always the old one or the new one, never a mix, and the
next compile leaves no leftovers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _variant_sets(package: Path) -> set[str]:
    """The `--set` line of every variant file: one value when the package is consistent."""
    headers = set()
    for path in sorted(package.glob("*.py")):
        if path.name != "__init__.py":
            second = path.read_text().splitlines()[1]
            headers.add(second.split("--set ")[-1] if "--set" in second else "")
            compile(path.read_text(), str(path), "exec")  # every file parses
    return headers


def test_kill_during_compile_never_mixes_variants(tmp_path):
    out = tmp_path / "o"
    spec = ROOT / "specs" / "panoptic.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "omgen", "compile", str(spec), "-o", str(out), "-q"]
    subprocess.run(base + ["--set", "top_k=100"], check=True, env=env, capture_output=True)
    package = out / "panoptic"
    expected = {p.name for p in package.glob("*.py")}
    delays = [0.45 + 0.07 * i for i in range(11)]  # around the write phase of a ~1 s child
    for round_, delay in enumerate(delays):
        child = subprocess.Popen(base + ["--set", f"top_k={101 + round_}"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        if package.exists():
            assert {p.name for p in package.glob("*.py")} == expected
            assert len(_variant_sets(package)) == 1, f"mixed package after a kill at {delay:.2f} s"
    done = subprocess.run(base, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    leftovers += [p.name for p in package.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    assert _variant_sets(package) == {""}


def test_concurrent_compiles_of_one_folder_take_turns(tmp_path):
    """DDP ranks, loader workers and parallel tests compile the same spec into one folder at once: every writer
    succeeds, a reader always sees the whole package (never a missing folder or file), nothing is left over."""
    out = tmp_path / "o"
    spec = ROOT / "specs" / "examples" / "toy_peaks.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "omgen", "compile", str(spec), "-o", str(out), "-q"]
    subprocess.run(base, check=True, env=env, capture_output=True)
    package = next(p for p in out.iterdir() if p.is_dir())
    expected = {p.name for p in package.glob("*.py")}
    script = ("import subprocess, sys\n"
              "for k in range(4):\n"
              "    subprocess.run(sys.argv[1:] + ['--set', f'threshold=0.{k + 1}'], check=True)\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, *base], env=env, stderr=subprocess.PIPE)
               for _ in range(3)]
    seen = 0
    while any(w.poll() is None for w in writers):
        # by path, as an import looks a module up (a listing would read the old folder while it is removed)
        missing = [name for name in sorted(expected) if not (package / name).is_file()]
        assert not missing, missing
        seen += 1
        time.sleep(0.002)  # look often, but leave the cores to the writers
    errors = [w.stderr.read().decode() for w in writers if w.wait() != 0]
    assert not errors, errors
    assert seen > 10
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers


def test_a_compile_waits_for_the_writer_holding_the_folder(tmp_path):
    from omgen.output import locked
    out = tmp_path / "o"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "omgen", "compile", str(ROOT / "specs" / "examples" / "toy_peaks.yaml"),
               "-o", str(out), "-q"]
    with locked(out):
        child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        time.sleep(3)  # far longer than the toy compile takes
        assert child.poll() is None, "the compile did not wait for the folder's lock"
        assert not [p for p in out.iterdir() if not p.name.startswith(".")]
    assert child.wait(timeout=60) == 0, child.stderr.read().decode()
    assert (out / "toy_peaks").is_dir() and not [p for p in out.iterdir() if p.name.startswith(".")]
