"""Peak memory of panoptic infer and targets above their inputs, at batch 1 and 8 (1024x2048), now and at a revision.

    python bench/peak_memory.py [--before REV]

Each measurement runs in a fresh process in which glibc maps every allocation of 64 KiB or more on its own and
returns it when freed (MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0 MALLOC_TOP_PAD_=0), so the resident
set follows the live tensors; the peak is the kernel's high-water mark (VmHWM, reset after the inputs are made)
minus the resident set then. Outputs are included, except on the forward_into rows: there the results of a first
call are held and passed back (out = m.forward_into(out, ...)), and the peak is the second call's above the inputs
and the held results. A measuring device, not a setting to deploy with.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_TOP_PAD_": "0"}


def _status(key: str) -> float:
    return int(Path("/proc/self/status").read_text().split(key + ":")[1].split()[0]) / 1024


def measure(module_path: str, entry: str, n: int, held: bool = False) -> float:
    import torch

    sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
    import bench_panoptic as bp

    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("measured", module_path)
    om = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(om)
    pan = bp.scene(n, 1024, 2048, seed=1)
    args = (pan,) if entry == "targets" else bp.outputs(pan, seed=1)
    del pan
    gc.collect()
    program = om.ENTRYPOINTS[entry]()
    out = program.forward_into({}, *args) if held else {}
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    base = _status("VmRSS")
    out = program.forward_into(out, *args) if held else program(*args)
    assert out
    return _status("VmHWM") - base


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=None, help="a git revision to compare with (its generated/panoptic/base.py)")
    p.add_argument("--one", nargs=4, metavar=("MODULE", "ENTRY", "N", "HELD"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(f"{measure(args.one[0], args.one[1], int(args.one[2]), args.one[3] == 'held'):.0f}")
        return 0
    modules = {"now": str(ROOT / "generated" / "panoptic" / "base.py")}
    if args.before:
        text = subprocess.run(["git", "show", f"{args.before}:generated/panoptic/base.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        before = Path(tempfile.mkdtemp()) / "before.py"
        before.write_text(text)
        modules = {args.before: str(before), **modules}
    print("| entrypoint | batch | " + " | ".join(modules) + " |\n| --- | --- |" + " --- |" * len(modules))
    for entry, how in (("infer", "forward"), ("targets", "forward"), ("infer", "held"), ("targets", "held")):
        for n in (1, 8):
            peaks = [subprocess.run([sys.executable, __file__, "--one", path, entry, str(n), how],
                                    env={**os.environ, **ENV}, check=True, capture_output=True, text=True).stdout.strip()
                     for path in modules.values()]
            what = entry if how == "forward" else f"{entry}, forward_into (out held)"
            print(f"| {what} | {n} | " + " | ".join(f"{v} MB" for v in peaks) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
