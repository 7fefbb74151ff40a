"""Retrain the CPU demo with each center rule (issue 18): whole pixel (the demo's ``synthetic`` variant) and the
exact centroid (``exact-centers`` with the synthetic preset's config), the same seeds, the full 500 steps.

    python bench/center_rule_train.py [--seeds 0 1 2] [--out runs/center-rule] [--reuse]

Each run is ``python -m train train train/configs/synthetic_demo.yaml`` with ``seed`` and, for the exact rule,
``om.variant=exact-centers om.config_from=synthetic``; the time budget is lifted so that both rules train all 500
steps whatever the machine's load. The dataset (runs/demo/data, generated once) is shared. Prints one markdown row
per run and the mean per rule. Not a timed benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "train" / "configs" / "synthetic_demo.yaml"
RULES = {"whole pixel": [], "exact centroid": ["om.variant=exact-centers", "om.config_from=synthetic"]}
KEYS = ("pq", "pq_things", "pq_stuff", "miou")


def last_eval(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "eval"][-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "center-rule")
    p.add_argument("--reuse", action="store_true", help="keep the runs that finished (their last evaluation)")
    args = p.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    results = {rule: [] for rule in RULES}
    print("| rule | seed | PQ | PQ things | PQ stuff | mIoU |\n| --- | --- | --- | --- | --- | --- |")
    for seed in args.seeds:
        for rule, sets in RULES.items():
            run = args.out / f"{rule.replace(' ', '-')}-seed{seed}"
            done = (run / "metrics.jsonl").is_file() and any(
                '"kind": "eval"' in line for line in (run / "metrics.jsonl").read_text().splitlines())
            if not done or not args.reuse:
                # om.compile=off: the committed generated/ as it is (a spec edited meanwhile does not stop a run)
                overrides = [f"seed={seed}", "train.time_budget_s=100000", "train.progress=false", "om.compile=off",
                             *sets]
                cmd = [sys.executable, "-m", "train", "train", str(CONFIG), "--out", str(run), "--overwrite"]
                cmd += [a for s in overrides for a in ("--set", s)]
                subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            metrics = last_eval(run)
            results[rule].append(metrics)
            print(f"| {rule} | {seed} | " + " | ".join(f"{metrics[k]:.1f}" for k in KEYS) + " |", flush=True)
    for rule, runs in results.items():
        means = [statistics.mean(r[k] for r in runs) for k in KEYS]
        print(f"| {rule} | mean of {len(runs)} | " + " | ".join(f"{m:.1f}" for m in means) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
