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

Batch 8 allocates tensors above glibc's mmap threshold (32 MiB max), so every
fresh [8, 1, 1024, 2048] int64 map page-faults; run once more with
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 to see the cost without it.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
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

import generated.panoptic.base as om  # noqa: E402

import published_targets as published  # noqa: E402  (bench/published_targets.py)

_spec = importlib.util.spec_from_file_location("panoptic_reference", ROOT / "tests" / "panoptic" / "reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


CLOCK = time.perf_counter  # --clock cpu: time.process_time (CPU seconds of all threads; immune to other
                           # processes taking the cores, which on the shared 2-core VM inflate wall times 2-10x)


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return min(times)


def paired(fn, base, repeat):
    """min time of fn and of base, alternately (bench/timing.py), with this script's clock."""
    return timing.paired(fn, base, repeat, clock=CLOCK)


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
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--quick", action="store_true", help="256x512 instead of 1024x2048, no batch 8")
    ap.add_argument("--batch-only", action="store_true", help="only the batch-8 rows (the main run's child process)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    h, w = (256, 512) if args.quick else (1024, 2048)
    rows = []

    def row(what, seconds, base_name, base_seconds, note=""):
        rows.append(f"| {what} | {seconds * 1e3:.1f} ms | {base_name} | {base_seconds * 1e3:.1f} ms | "
                    f"{seconds / base_seconds:.2f} | {note} |")
        print(rows[-1], flush=True)

    if args.batch_only:
        batch_rows(row, h, w)
        return
    pan = scene(1, h, w)
    logits, center, offsets = outputs(pan)
    infer, targets = om.Infer(), om.Targets()
    infer_s, targets_s = torch.jit.script(infer), torch.jit.script(targets)
    out = infer(logits, center, offsets)
    import os
    alloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"# allocator env: {alloc or 'glibc defaults'}; clock: {args.clock}")
    print(f"# {h}x{w}, {int(out['center_valid'].sum())} centers decoded, "
          f"{int(targets(pan)['centroids_truth'].shape[0])} true instances, "
          f"thing pixels {float((out['instance_pred'] >= 0).float().mean()) * 100:.1f} %, threads {args.threads}")
    print("| what | time | baseline | baseline time | ratio | note |\n| --- | --- | --- | --- | --- | --- |")

    amax = lambda: logits.amax(1)
    r = args.repeat
    t_max, t_amax = paired(lambda: logits.max(1), amax, r)
    row("semantic_logits.max(1)", t_max, "amax(1)", t_amax)
    t_arg, t_amax2 = paired(lambda: logits.argmax(1), amax, 1)
    row("semantic_logits.argmax(1)", t_arg, "amax(1)", t_amax2, "pytorch#140000; not used")
    terms = om.Terms()
    assert torch.equal(terms.semantic_pred(logits), logits.max(1, keepdim=True)[1])
    t_sp, t_amax2 = paired(lambda: terms.semantic_pred(logits), amax, r)
    row("semantic_pred (amax + uint8 rank, used)", t_sp, "amax(1)", t_amax2, "identical to max(1)")
    t_sp, t_max2 = paired(lambda: terms.semantic_pred(logits), lambda: logits.max(1), r)
    row("semantic_pred (amax + uint8 rank, used)", t_sp, "max(1)", t_max2)
    t_inf, t_amax = paired(lambda: infer(logits, center, offsets), amax, r)
    row("infer (eager)", t_inf, "amax(1)", t_amax, "goal <= 8")
    t_inf_s, t_amax2 = paired(lambda: infer_s(logits, center, offsets), amax, r)
    row("infer (TorchScript)", t_inf_s, "amax(1)", t_amax2)

    # decoding pieces
    c = center
    t_f, t_pool = paired(lambda: om.max_filter_same(c, 7), lambda: F.max_pool2d(c, 7, 1, 3), r)
    row("7x7 max filter, max_filter_same (separable, doubling)", t_f, "F.max_pool2d", t_pool, "identical results; kept")

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
    assert torch.equal(om.max_filter_same(c, 7), F.max_pool2d(c, 7, 1, 3))
    t_n, t_f2 = paired(lambda: naive_separable(c), lambda: om.max_filter_same(c, 7), r)
    row("7x7 max filter, 2 x 6 shifted-slice maxima", t_n, "max_filter_same", t_f2, "identical results")

    # loop references: pure Python, timed on a 128x256 scene with the same instance count and
    # relative sizes (so thing pixels and centers per image are as at full size), scaled by pixels
    sh, sw = 128, 256
    scale = (h * w) / (sh * sw)
    small = scene(1, sh, sw)
    sl, sc, so = outputs(small)
    t = CLOCK()
    ref.decode(sl.numpy(), sc.numpy(), so.numpy(), dict(ref.CITYSCAPES))
    t_ref = (CLOCK() - t) * scale
    row("infer (eager)", t_inf, "loop reference decode", t_ref,
        f"reference timed on a {sh}x{sw} scene (30 instances), x{scale:.0f}; goal <= 1/50")
    t_tg, t_amax2 = paired(lambda: targets(pan), amax, r)
    row("targets (eager)", t_tg, "amax(1)", t_amax2)
    t = CLOCK()
    ref.targets(small.numpy(), dict(ref.CITYSCAPES))
    t_ref_tg = (CLOCK() - t) * scale
    row("targets (eager)", t_tg, "loop reference targets", t_ref_tg,
        f"reference on a {sh}x{sw} scene (30 instances), x{scale:.0f}; goal <= 0.1 s and <= 1/5")
    t_tg_s, t_amax2 = paired(lambda: targets_s(pan), amax, r)
    row("targets (TorchScript)", t_tg_s, "amax(1)", t_amax2)
    # the published generator's algorithm (bench/published_targets.py: re-implemented, numpy, one segment at a time)
    generator = published.PublishedTargets(thing_ids=ref.CITYSCAPES["thing_ids"])
    pan0 = pan[0, 0].numpy()
    segments = published.segments_of(pan0, ref.CITYSCAPES["thing_ids"])
    theirs, ours = generator(pan0, segments), targets(pan)
    assert np.array_equal(theirs["semantic"], ours["semantic_truth"][0, 0].numpy())
    assert np.array_equal(theirs["foreground"], ours["thing_mask_truth"][0, 0].numpy())
    for name in ("center_weights", "offset_weights"):
        assert np.array_equal(theirs[name].reshape(h, w), ours[name][0, 0].numpy()), name
    labelled = theirs["semantic"] != 255  # their semantic weight is 1 on void too, ours 0 (the loss ignores it)
    assert np.array_equal(theirs["semantic_weights"][labelled], ours["semantic_weights"][0, 0].numpy()[labelled])
    assert np.allclose(theirs["offset"], ours["offset_truth"][0].numpy(), atol=1e-4)
    # their window reaches 3 sigma + 1 pixels, ours 3 sigma: on that ring a Gaussian is < exp(-25^2 / 128) < 0.008
    inside = ours["center_truth"][0].numpy() > 0.008
    assert np.allclose(theirs["center"][inside], ours["center_truth"][0].numpy()[inside], atol=1e-6)
    t_tg, t_pub = paired(lambda: targets(pan), lambda: generator(pan0, segments), r)
    row("targets (eager)", t_tg, "published target generator", t_pub,
        f"re-implemented from its algorithm (bench/published_targets.py), {len(segments)} segments; goal <= 1/10")
    t_tg_s, t_pub = paired(lambda: targets_s(pan), lambda: generator(pan0, segments), r)
    row("targets (TorchScript)", t_tg_s, "published target generator", t_pub)
    # a data loader that keeps its results between maps: forward_into writes them where they are (no fresh memory)
    held = {"eager": targets.forward_into({}, pan), "script": targets_s.forward_into({}, pan)}
    assert all(torch.equal(held["script"][k], v) for k, v in ours.items())
    t_tg_i, t_pub = paired(lambda: held.update(eager=targets.forward_into(held["eager"], pan)),
                           lambda: generator(pan0, segments), r)
    row("targets (eager), forward_into (out held)", t_tg_i, "published target generator", t_pub, "goal <= 1/10")
    t_tg_i, t_pub = paired(lambda: held.update(script=targets_s.forward_into(held["script"], pan)),
                           lambda: generator(pan0, segments), r)
    row("targets (TorchScript), forward_into (out held)", t_tg_i, "published target generator", t_pub, "goal <= 1/10")
    before = published.PublishedTargets(thing_ids=ref.CITYSCAPES["thing_ids"], complete=False)
    t_tg_s, t_pub = paired(lambda: targets_s(pan), lambda: before(pan0, segments), r)
    row("targets (TorchScript)", t_tg_s, "published generator as re-implemented before 2026-12-08", t_pub,
        "no foreground map, meshgrid coordinates, no output conversions")
    train = om.Train()
    t_tr, t_amax2 = paired(lambda: train(logits, center, offsets, pan), amax, max(1, r // 2))
    row("train losses (forward)", t_tr, "amax(1)", t_amax2)

    if not args.quick:
        batch_rows(row, h, w)
        # the same rows from a child process that runs nothing else (glibc defaults unless this one's env says
        # otherwise): what a user's own program sees
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--batch-only", "--threads",
                                str(args.threads), "--clock", args.clock], capture_output=True, text=True, check=True)
        for line in child.stdout.splitlines():
            if line.startswith("| ") and not line.startswith(("| what", "| ---")):
                cells = line.split(" | ")
                cells[0] = cells[0] + " (fresh process)"
                rows.append(" | ".join(cells))
                print(rows[-1], flush=True)


def batch_rows(row, h, w):
    """Batch 8 against 8 calls of batch 1 (per image), in whatever process calls it: the main run calls it
    in-process and once more in a child process that does nothing else (`--batch-only`), which is the
    "plain python process" of issue 18. The allocator's state decides whether the batch-1 calls page-fault
    (glibc trims its heap when the caller frees the results, unless something allocated later sits above),
    so the two runs can differ; both are printed."""
    infer, targets = om.Infer(), om.Targets()
    logits1 = outputs(scene(1, h, w))[0]
    amax = lambda: logits1.amax(1)
    pan8 = scene(8, h, w, seed=1)
    l8, c8, o8 = outputs(pan8, seed=1)
    ones = [(l8[i:i + 1].clone(), c8[i:i + 1].clone(), o8[i:i + 1].clone()) for i in range(8)]
    eight = lambda: [infer(*one) for one in ones]  # the same 8 images, 8 calls of batch 1
    t8, t1 = paired(lambda: infer(l8, c8, o8), eight, 3)
    row("infer, batch 8 (per_image), per image", t8 / 8, "8 calls of batch 1, per image", t1 / 8, "goal <= 1.05")
    held = {"out": infer.forward_into({}, l8, c8, o8)}  # what a caller keeps between calls
    into = lambda: held.update(out=infer.forward_into(held["out"], l8, c8, o8))
    assert all(torch.equal(held["out"][k], v) for k, v in infer(l8, c8, o8).items())
    t8, t1 = paired(into, eight, 3)
    row("infer, batch 8, forward_into (the caller's out reused), per image", t8 / 8,
        "8 calls of batch 1, per image", t1 / 8, "goal <= 1.05")
    held_one = [{"out": infer.forward_into({}, *one)} for one in ones]  # 8 callers of batch 1, each its out held
    eight_into = lambda: [h.update(out=infer.forward_into(h["out"], *one)) for h, one in zip(held_one, ones)]
    t8, t1 = paired(into, eight_into, 3)
    row("infer, batch 8, forward_into, per image", t8 / 8, "8 calls of batch 1 forward_into (out held), per image",
        t1 / 8, "goal <= 1.05")
    t1_into, t1 = paired(eight_into, eight, 3)
    row("infer, batch 1, forward_into (out held)", t1_into / 8, "batch 1 forward()", t1 / 8)
    t8, t1 = paired(lambda: infer._forward_batch(l8, c8, o8, {}), eight, 3)
    row("infer, batch 8 as one batch, per image", t8 / 8, "8 calls of batch 1, per image", t1 / 8,
        "before per_image")
    t8, t1 = paired(lambda: l8.amax(1), amax, 3)
    row("amax(1), batch 8, per image", t8 / 8, "amax(1) batch 1", t1)
    pans = [pan8[i:i + 1].clone() for i in range(8)]
    eight_targets = lambda: [targets(one) for one in pans]  # the same 8 maps, 8 calls of batch 1
    t8, t1 = paired(lambda: targets(pan8), eight_targets, 3)
    row("targets, batch 8 (forward: batch), per image", t8 / 8, "8 calls of batch 1, per image", t1 / 8,
        "goal <= 1.05")
    held_targets = {"out": targets.forward_into({}, pan8)}
    into_targets = lambda: held_targets.update(out=targets.forward_into(held_targets["out"], pan8))
    t8, t1 = paired(into_targets, eight_targets, 3)
    row("targets, batch 8, forward_into (the caller's out reused), per image", t8 / 8,
        "8 calls of batch 1, per image", t1 / 8, "goal <= 1.05")
    held_pans = [{"out": targets.forward_into({}, one)} for one in pans]
    eight_targets_into = lambda: [h.update(out=targets.forward_into(h["out"], one)) for h, one in zip(held_pans, pans)]
    t8, t1 = paired(into_targets, eight_targets_into, 3)
    row("targets, batch 8, forward_into, per image", t8 / 8, "8 calls of batch 1 forward_into (out held), per image",
        t1 / 8, "goal <= 1.05")
    t1_into, t1 = paired(eight_targets_into, eight_targets, 3)
    row("targets, batch 1, forward_into (out held)", t1_into / 8, "batch 1 forward()", t1 / 8)
    # what plain forward() at batch 8 cannot avoid: first-touching its fresh outputs (every one above glibc's
    # 32 MiB mmap ceiling, so mapped afresh per call), against writing the same tensors held
    for name, result in (("infer", infer(l8, c8, o8)), ("targets", targets(pan8))):
        layout = [(v.shape, v.dtype) for v in result.values()]
        per_image_mb = sum(v.numel() * v.element_size() for v in result.values()) / 8 / 2 ** 20
        fresh = lambda: [torch.empty(shape, dtype=dtype).zero_() for shape, dtype in layout]
        kept = [torch.empty(shape, dtype=dtype) for shape, dtype in layout]
        t_fresh, t_kept = paired(fresh, lambda: [x.zero_() for x in kept], 3)
        row(f"{name} batch-8 outputs, fresh (empty + zero_), per image", t_fresh / 8,
            "zero_ of the same tensors held, per image", t_kept / 8,
            f"{per_image_mb:.0f} MB per image: {(t_fresh - t_kept) / 8 / per_image_mb * 1e3:.2f} ms per MB")
        del result, kept
    # the documented loop over images in instance_assignment, against one batched gather
    s8 = om.Session()
    s8.bind(semantic_logits=l8, center_heatmap=c8, offsets=o8)
    sel, b, j = s8.instance_assignment()
    valid = s8.center_valid()
    kv = int(valid.sum(1).max())
    far = torch.full_like(s8.centers_pred()[:, :kv, 0], float("inf"))
    cy = torch.where(valid[:, :kv], s8.centers_pred()[:, :kv, 0], far)
    cx = torch.where(valid[:, :kv], s8.centers_pred()[:, :kv, 1], far)
    hw = h * w
    rr = sel - b * hw
    yy = torch.div(rr, w, rounding_mode="floor")
    flat = o8.reshape(-1)
    vy = yy.float() + flat[b * 2 * hw + rr]
    vx = (rr - yy * w).float() + flat[b * 2 * hw + hw + rr]
    counts = torch.bincount(b, minlength=8).tolist()

    def looped():
        parts, start = [], 0
        for i in range(8):
            stop = start + counts[i]
            parts.append(om.nearest_center(vy[start:stop], vx[start:stop], cy[i:i + 1], cx[i:i + 1]))
            start = stop
        return torch.cat(parts)
    gathered = lambda: om.nearest_center(vy, vx, cy[b], cx[b])
    assert torch.equal(looped(), gathered())
    t_loop, t_gather = paired(looped, gathered, 3)
    row("nearest center, batch 8: loop over images (used)", t_loop, "one batched gather", t_gather,
        f"{vy.shape[0]} thing pixels x {kv} centers")


if __name__ == "__main__":
    main()
