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
