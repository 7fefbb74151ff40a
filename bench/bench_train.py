"""Training throughput on the CPU for the demo config, and the share of a step spent in the OM.

    python bench/bench_train.py [--config train/configs/synthetic_demo.yaml] [--steps 6] [--threads 2]

Per repeat, interleaved on the same batches (data loading excluded):
  step      full training step: network forward, OM (targets + train entrypoint), backward, Adam
  network   network forward + backward of a trivial loss + Adam (no OM)
  om        OM only: targets + train entrypoint, forward + backward, on fixed prediction tensors
  targets   the targets entrypoint alone (forward; what a data-loader worker runs with targets: loader)
The OM share is om / step. Reports the best of the repeats (the machine is shared; the
minimum is the least disturbed), images/s = batch / step, and the load average.
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.config import load_config  # noqa: E402
from train.cli import _train_collate, build_dataset, build_model  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "train/configs/synthetic_demo.yaml"))
    p.add_argument("--steps", type=int, default=6, help="repeats (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(a.config, [f"data.root={tmp}/data", "data.generate.train=64", "data.generate.val=4", *a.set])
        ds = build_dataset(cfg, "train", train=True)
        torch.manual_seed(0)
        results = {}
        for mode in ("device", "inline"):
            cfg["om"]["targets"] = mode
            model = build_model(cfg, ds.num_classes, ds.thing_train_ids)
            if cfg.get("train", {}).get("channels_last"):
                model.network.to(memory_format=torch.channels_last)
            results[mode] = bench(model, ds, int(cfg["train"]["batch_size"]), a.steps)
    bs = int(cfg["train"]["batch_size"])
    crop = cfg["data"].get("crop_size")
    import os

    print(f"config {Path(a.config).name}: batch {bs}, crop {crop}, {a.threads} threads, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}, best of {a.steps}")
    print("| targets mode | step (s) | images/s | network fwd+bwd (s) | OM targets+train fwd+bwd (s) | OM share | targets alone (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, r in results.items():
        print(f"| {mode} | {r['step']:.3f} | {bs / r['step']:.1f} | {r['network']:.3f} | {r['om']:.3f} | "
              f"{100 * r['om'] / r['step']:.1f} % | {r['targets']:.3f} |")
    return 0


def bench(model, ds, batch_size: int, steps: int):
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False,
                                         collate_fn=functools.partial(_train_collate, void_id=ds.void_id))
    batches = [b for _, b in zip(range(steps + 2), _cycle(loader))]
    opt = torch.optim.Adam(model.network.parameters(), 1e-4)
    model.train()
    times = {"step": [], "network": [], "om": [], "targets": []}
    for i, batch in enumerate(batches):
        # full step
        t = time.perf_counter()
        losses = model(batch)
        opt.zero_grad()
        losses[model.loss_key].backward()
        opt.step()
        t_step = time.perf_counter() - t
        # network only
        t = time.perf_counter()
        out = model.network(batch["image"])
        loss = sum(v.float().mean() for v in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        t_net = time.perf_counter() - t
        # OM only, on fixed predictions
        preds = {k: v.detach().requires_grad_(True) for k, v in model.predictions(out).items()}
        t = time.perf_counter()
        om_losses = _om_losses(model, preds, batch)
        om_losses[model.loss_key].backward()
        t_om = time.perf_counter() - t
        t = time.perf_counter()
        with torch.no_grad():
            model.compute_targets(model.truths(batch, model.targets_truth))
        t_tg = time.perf_counter() - t
        if i >= 2:
            for k, v in zip(times, (t_step, t_net, t_om, t_tg)):
                times[k].append(v)
    return {k: min(v) for k, v in times.items()}


def _om_losses(model, preds, batch):
    if model.targets_mode == "inline":
        return model.losses(preds, model.truths(batch, model.train_truth))
    targets = model.compute_targets(model.truths(batch, model.targets_truth))
    return model.losses(preds, model.truths(batch, model.train_truth, required=False), targets)


def _cycle(loader):
    while True:
        yield from loader


if __name__ == "__main__":
    raise SystemExit(main())
