"""Benchmark of the Panoptic-DeepLab OM (generated/panoptic/base.py) on the CPU.

    python bench/bench_panoptic.py [--threads 2] [--repeat 5] [--quick]

Cityscapes size: [N, 19, 1024, 2048] logits, ~30 instances. Network outputs are
made from a synthetic ground truth (noisy one-hot logits, center target + noise,
offset target + noise), so decoding sees realistic centers and thing areas.
Every time is the minimum over --repeat runs and is reported beside a baseline
timed in the same run: semantic_logits.amax(1) (the floor: reading the logits
once), and the plain loop references of tests/panoptic/reference.py, which are
timed on a crop and scaled by the pixel count (they are pure Python loops).
Prints the markdown rows of the "Panoptic-DeepLab OM" section of docs/benchmarks.md.
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
sys.path.insert(0, str(ROOT))

import generated.panoptic.base as om  # noqa: E402

_spec = importlib.util.spec_from_file_location("panoptic_reference", ROOT / "tests" / "panoptic" / "reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def scene(n, h, w, instances=30, seed=0):
    """Panoptic map: stuff bands, `instances` ellipses of thing classes (1 % .. 8 % of the height), some void."""
    rng = np.random.default_rng(seed)
    pan = np.zeros((n, 1, h, w), np.int64)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        bands = np.sort(rng.integers(0, h, 4))
        stuff = rng.choice(11, 5, replace=False)
        for j, (a, b) in enumerate(zip([0, *bands], [*bands, h])):
            pan[i, 0, a:b] = stuff[j] * 1000
        for k in range(instances):
            cls = int(rng.integers(11, 19))
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.01, 0.08) * h, rng.uniform(0.01, 0.08) * h
            y0, y1, x0, x1 = int(max(cy - ry, 0)), int(min(cy + ry + 1, h)), int(max(cx - rx, 0)), int(min(cx + rx + 1, w))
            m = ((yy[y0:y1, x0:x1] - cy) / ry) ** 2 + ((xx[y0:y1, x0:x1] - cx) / rx) ** 2 <= 1
            pan[i, 0, y0:y1, x0:x1][m] = cls * 1000 + k + 1
        pan[i, 0, h - h // 20:, : w // 10] = 255 * 1000
    return torch.from_numpy(pan)


def outputs(pan, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = om.Targets()(pan)
    n, _, h, w = pan.shape
    sem = t["semantic_truth"].clamp(max=18)
    logits = torch.randn(n, 19, h, w, generator=g)
    logits.scatter_add_(1, sem, torch.full(sem.shape, 4.0))
    center = t["center_truth"] + 0.02 * torch.rand(n, 1, h, w, generator=g)
    offsets = t["offset_truth"] + torch.randn(n, 2, h, w, generator=g) * 0.5
    return logits, center, offsets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="256x512 instead of 1024x2048, no batch 8")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (256, 512) if args.quick else (1024, 2048)
    rows = []

    def row(what, seconds, base_name, base_seconds, note=""):
        rows.append(f"| {what} | {seconds * 1e3:.1f} ms | {base_name} | {base_seconds * 1e3:.1f} ms | "
                    f"{seconds / base_seconds:.2f} | {note} |")
        print(rows[-1], flush=True)

    pan = scene(1, h, w)
    logits, center, offsets = outputs(pan)
    infer, targets = om.Infer(), om.Targets()
    infer_s, targets_s = torch.jit.script(infer), torch.jit.script(targets)
    out = infer(logits, center, offsets)
    print(f"# {h}x{w}, {int(out['center_valid'].sum())} centers decoded, "
          f"{int(targets(pan)['centroids_truth'].shape[0])} true instances, "
          f"thing pixels {float((out['instance_pred'] >= 0).float().mean()) * 100:.1f} %, threads {args.threads}")
    print("| what | time | baseline | baseline time | ratio | note |\n| --- | --- | --- | --- | --- | --- |")

    t_amax = best(lambda: logits.amax(1), args.repeat)
    row("semantic_logits.max(1)", best(lambda: logits.max(1), args.repeat), "amax(1)", t_amax)
    row("semantic_logits.argmax(1)", best(lambda: logits.argmax(1), 1), "amax(1)", t_amax, "pytorch#140000; not used")
    t_inf = best(lambda: infer(logits, center, offsets), args.repeat)
    row("infer (eager)", t_inf, "amax(1)", t_amax, "goal <= 25")
    row("infer (TorchScript)", best(lambda: infer_s(logits, center, offsets), args.repeat), "amax(1)", t_amax)

    # decoding pieces
    c = center
    t_pool = best(lambda: F.max_pool2d(c, 7, 1, 3), args.repeat)
    row("7x7 max filter, max_filter_same (separable, doubling)", best(lambda: om.max_filter_same(c, 7), args.repeat),
        "F.max_pool2d", t_pool, "identical results; kept")

    def naive_separable(x, k=7):
        r = k // 2
        p = F.pad(x, [r, r, r, r], value=float("-inf"))
        m = p[..., :, 0:w]
        for i in range(1, k):
            m = torch.maximum(m, p[..., :, i:i + w])
        o = m[..., 0:h, :]
        for i in range(1, k):
            o = torch.maximum(o, m[..., i:i + h, :])
        return o
    assert torch.equal(naive_separable(c), F.max_pool2d(c, 7, 1, 3))
    row("7x7 max filter, 2 x 6 shifted-slice maxima", best(lambda: naive_separable(c), args.repeat), "F.max_pool2d",
        t_pool, "identical results")

    # loop references: pure Python, timed on a 128x256 scene with the same instance count and
    # relative sizes (so thing pixels and centers per image are as at full size), scaled by pixels
    sh, sw = 128, 256
    scale = (h * w) / (sh * sw)
    small = scene(1, sh, sw)
    sl, sc, so = outputs(small)
    t = time.perf_counter()
    ref.decode(sl.numpy(), sc.numpy(), so.numpy(), dict(ref.CITYSCAPES))
    t_ref = (time.perf_counter() - t) * scale
    row("infer (eager)", t_inf, "loop reference decode", t_ref,
        f"reference timed on a {sh}x{sw} scene (30 instances), x{scale:.0f}; goal <= 1/50")
    t_tg = best(lambda: targets(pan), args.repeat)
    t = time.perf_counter()
    ref.targets(small.numpy(), dict(ref.CITYSCAPES))
    t_ref_tg = (time.perf_counter() - t) * scale
    row("targets (eager)", t_tg, "loop reference targets", t_ref_tg,
        f"reference on a {sh}x{sw} scene (30 instances), x{scale:.0f}; goal <= 0.1 s and <= 1/5")
    row("targets (TorchScript)", best(lambda: targets_s(pan), args.repeat), "amax(1)", t_amax)
    train = om.Train()
    row("train losses (forward)", best(lambda: train(logits, center, offsets, pan), max(1, args.repeat // 2)),
        "amax(1)", t_amax)

    if not args.quick:
        pan8 = scene(8, h, w, seed=1)
        l8, c8, o8 = outputs(pan8, seed=1)
        t_amax8 = best(lambda: l8.amax(1), 2)
        t_inf8 = best(lambda: infer(l8, c8, o8), 2)
        row("infer, batch 8, per image", t_inf8 / 8, "infer batch 1", t_inf, "goal <= 1")
        row("amax(1), batch 8, per image", t_amax8 / 8, "amax(1) batch 1", t_amax)
        t_tg8 = best(lambda: targets(pan8), 2)
        row("targets, batch 8, per image", t_tg8 / 8, "targets batch 1", t_tg, "goal <= 1")


if __name__ == "__main__":
    main()
