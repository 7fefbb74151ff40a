"""Benchmark of the pose OM's decoding (generated/pose/base.py, infer) on the CPU.

    python bench/bench_pose.py [--threads 2] [--repeat 7]

Decoding at 512x512 input (a 128x128 output grid): person heat map [N, 1, 128, 128], 17 joint heat maps
[N, 17, 128, 128], joint offsets [N, 34, 128, 128], K = 100 people and 100 peaks per joint type, batch 1 and
8; against the 3x3 max-pool (F.max_pool2d) of the same 18 heat maps, the floor of any max-filter decoder (one
read of the heat maps), paired in the same run (bench/timing.py: alternating, minimum over --repeat). Eager
and TorchScript. Prints the markdown rows of the "Pose OM" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import inspect
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402
sys.path.insert(0, str(ROOT))

import generated.pose.base as om  # noqa: E402


def predictions(n: int, seed: int = 0) -> dict:
    """Network-like maps: a few confident people and joints over low-scoring noise."""
    g = torch.Generator().manual_seed(seed)
    heat = torch.randn(n, 1, 128, 128, generator=g) - 4.0
    joints = torch.randn(n, 17, 128, 128, generator=g) - 4.0
    for i in range(n):
        for _ in range(8):
            y, x = torch.randint(8, 120, (2,), generator=g).tolist()
            heat[i, 0, y, x] = 4.0
            joints[i, :, y - 6:y + 6, x - 4:x + 4] += torch.rand(17, 12, 8, generator=g) * 6
    return dict(heatmap=heat, size=torch.rand(n, 2, 128, 128, generator=g) * 30 + 4,
                offset=torch.rand(n, 2, 128, 128, generator=g),
                joint_offset=torch.randn(n, 34, 128, 128, generator=g) * 6,
                joint_heatmap=joints, joint_sub_offset=torch.rand(n, 2, 128, 128, generator=g))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--repeat", type=int, default=7, help="timed runs of each (minimum reported)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    eager = om.Infer(top_k=100)
    scripted = torch.jit.script(eager)
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    print("| batch | decode eager ms / image | decode TorchScript ms / image | 3x3 max-pool of the 18 heat maps "
          "ms / image | eager / max-pool | TorchScript / max-pool |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in (1, 8):
        pred = predictions(n)
        args_in = [pred[k] for k in inspect.signature(eager.forward).parameters]  # the entrypoint's own order
        heat = torch.cat([pred["heatmap"], pred["joint_heatmap"]], 1)
        with torch.no_grad():
            assert torch.equal(eager(*args_in)["keypoints_pred"], scripted(*args_in)["keypoints_pred"])
            t_eager, t_pool = timing.paired(lambda: eager(*args_in), lambda: F.max_pool2d(heat, 3, 1, 1), args.repeat)
            t_script, t_pool2 = timing.paired(lambda: scripted(*args_in), lambda: F.max_pool2d(heat, 3, 1, 1),
                                              args.repeat)
        pool = min(t_pool, t_pool2)
        print(f"| {n} | {1e3 * t_eager / n:.2f} | {1e3 * t_script / n:.2f} | {1e3 * pool / n:.2f} | "
              f"{t_eager / t_pool:.1f} | {t_script / t_pool2:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
