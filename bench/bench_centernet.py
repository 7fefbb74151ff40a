"""Benchmark of the CenterNet OM (generated/centernet/base.py) on the CPU.

    python bench/bench_centernet.py [--threads 2] [--repeat 7] [--clock wall|cpu]

Decoding at 512x512 input: heat-map logits [N, 80, 128, 128], batch 1 and 8,
against the 3x3 max-pool of the heat map alone (the floor: one read of the
heat map) and against the loop reference of tests/centernet/reference.py
(numpy, one image at a time). Targets for 50 boxes per image (every size,
some cut by the border) against the loop reference. The 3x3 peak test:
F.max_pool2d against the library's max_filter_same (separable shifted-slice
maxima), identical results checked. Every time is the minimum over --repeat
runs, paired with its baseline in the same run (the machine is shared).
Prints the markdown rows of the "CenterNet OM" section of docs/benchmarks.md,
and the collision count of random scenes (docs/centernet.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402
sys.path.insert(0, str(ROOT))

import generated.centernet.base as om  # noqa: E402

_spec = importlib.util.spec_from_file_location("centernet_reference", ROOT / "tests" / "centernet" / "reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

CLOCK = time.perf_counter


def paired(fn, base, repeat):
    """min time of fn and of base, alternately (bench/timing.py), with this script's clock."""
    return timing.paired(fn, base, repeat, clock=CLOCK)


def boxes_batch(n, m=50, img=512, seed=0):
    """m boxes per image: log-uniform sizes 4..400 px, centers anywhere (some cut by the border), 80 classes."""
    rng = np.random.default_rng(seed)
    size = np.exp(rng.uniform(np.log(4), np.log(400), (n, m, 2)))
    center = rng.uniform(0, img, (n, m, 2))
    boxes = np.concatenate([center - size / 2, center + size / 2], 2).astype(np.float32)
    return torch.from_numpy(boxes), torch.from_numpy(rng.integers(0, 80, (n, m)))


def predictions(boxes, classes, seed=0):
    """Network-like outputs: logits from the target heat map + noise, sizes / offsets near the targets."""
    n = boxes.shape[0]
    g = torch.Generator().manual_seed(seed)
    t = om.Targets()([128, 128], boxes, classes)
    prob = (t["heat_truth"] * 0.9 + 0.05 * torch.rand(n, 80, 128, 128, generator=g)).clamp(1e-4, 1 - 1e-4)
    logits = torch.log(prob / (1 - prob))
    size = t["size_map_truth"] + torch.rand(n, 2, 128, 128, generator=g)
    offset = torch.rand(n, 2, 128, 128, generator=g)
    return logits, size, offset


def collisions(scenes=200, m=50, seed=0):
    """Objects lost in random scenes (bench boxes): same center cell as a later object (any class)."""
    boxes, classes = boxes_batch(scenes, m, seed=seed)
    t = om.Targets()([128, 128], boxes, classes)
    valid = t["valid_truth"]
    total = int(valid.sum())
    cells = torch.where(valid, t["index_truth"] + torch.arange(scenes).view(-1, 1) * 128 * 128, -1)
    distinct = int(torch.unique(cells[valid]).numel())
    same_class = torch.where(valid, cells * 80 + classes, -1)
    distinct_class = int(torch.unique(same_class[valid]).numel())
    return total, total - distinct, total - distinct_class


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    r = args.repeat
    rows = []

    def row(what, seconds, base_name, base_seconds, note=""):
        rows.append(f"| {what} | {seconds * 1e3:.2f} ms | {base_name} | {base_seconds * 1e3:.2f} ms | "
                    f"{seconds / base_seconds:.2f} | {note} |")
        print(rows[-1], flush=True)

    print(f"# 512x512 input, [N, 80, 128, 128] heat map, K = 100, threads {args.threads}, clock {args.clock}")
    print("| what | time / image | baseline | baseline time / image | ratio | note |\n"
          "| --- | --- | --- | --- | --- | --- |")
    infer, targets = om.Infer(), om.Targets()
    infer_s, targets_s = torch.jit.script(infer), torch.jit.script(targets)
    for n in (1, 8):
        boxes, classes = boxes_batch(n, seed=n)
        logits, size, offset = predictions(boxes, classes, seed=n)
        heat = torch.sigmoid(logits)
        pool = lambda: F.max_pool2d(heat, 3, 1, 1)
        assert torch.equal(om.max_filter_same(heat, 3), F.max_pool2d(heat, 3, 1, 1))
        t_f, t_p = paired(lambda: om.max_filter_same(heat, 3), pool, r)
        row(f"3x3 peak max, max_filter_same, N={n}", t_f / n, "F.max_pool2d", t_p / n, "identical; kept")
        t_i, t_p = paired(lambda: infer(logits, size, offset), pool, r)
        row(f"infer (eager), N={n}", t_i / n, "3x3 max-pool alone (floor)", t_p / n)
        t_is, t_p = paired(lambda: infer_s(logits, size, offset), pool, r)
        row(f"infer (TorchScript), N={n}", t_is / n, "3x3 max-pool alone (floor)", t_p / n)
        t_k, t_p = paired(lambda: torch.topk(logits.reshape(n, -1), 100, 1), pool, r)
        row(f"top-100 of the logits alone, N={n}", t_k / n, "3x3 max-pool alone", t_p / n, "another floor")
        ln, sn, on = logits.numpy(), size.numpy(), offset.numpy()
        reference = lambda: [ref.decode(ln[i], sn[i], on[i]) for i in range(n)]
        t_i, t_ref = paired(lambda: infer(logits, size, offset), reference, max(2, r // 2))
        row(f"infer (eager), N={n}", t_i / n, "loop reference decode", t_ref / n)
        grid = [128, 128]  # the output grid (a size input)
        bn, cn = boxes.numpy(), classes.numpy()
        ref_targets = lambda: [ref.targets(bn[i], cn[i], 128, 128) for i in range(n)]
        t_t, t_ref = paired(lambda: targets(grid, boxes, classes), ref_targets, max(2, r // 2))
        row(f"targets, 50 boxes (eager), N={n}", t_t / n, "loop reference targets", t_ref / n,
            "reference: a list of per-image arrays, no batch tensor")
        t_ts, t_ref = paired(lambda: targets_s(grid, boxes, classes), ref_targets, max(2, r // 2))
        row(f"targets, 50 boxes (TorchScript), N={n}", t_ts / n, "loop reference targets", t_ref / n)
        zeros = lambda: torch.zeros(n, 80, 128, 128)
        t_t, t_z = paired(lambda: targets(grid, boxes, classes), zeros, r)
        row(f"targets, 50 boxes (eager), N={n}", t_t / n, "torch.zeros of the heat map alone", t_z / n, "floor")
        train = om.Train()
        t_tr, t_p = paired(lambda: train(logits, grid, size, offset, boxes, classes), pool, max(1, r // 2))
        row(f"train losses + targets (forward), N={n}", t_tr / n, "3x3 max-pool alone", t_p / n)
    total, lost, lost_same = collisions()
    print(f"# collisions, 200 random scenes x 50 boxes (log-uniform 4..400 px, 80 classes): {total} valid objects, "
          f"{lost} share a center cell with a later object ({100 * lost / total:.2f} %), "
          f"{lost_same} of them with one of the same class ({100 * lost_same / total:.2f} %)")


if __name__ == "__main__":
    main()
