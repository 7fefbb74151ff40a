"""Training throughput on the CPU, per targets mode, and the share of a step spent in the OM.

    python bench/bench_train.py [--config train/configs/synthetic_demo.yaml] [--steps 6] [--threads 2]
    python bench/bench_train.py --centernet [--steps 12]        # train/configs/centernet_synthetic.yaml

Panoptic-DeepLab (default: the demo config, modes device and inline) or, with --centernet, CenterNet
(the synthetic config, modes inline, device and loader). One network is shared by all modes, and
every repeat times each column once on the same batch (rotating the order; data loading excluded):
  step      full training step: network forward, OM, backward, Adam. With targets: loader the batch
            already holds the targets (made by the collate, as in a data-loader worker), so the
            step is without them
  network   network forward + backward of a trivial loss + Adam (no OM)
  om        OM only, forward + backward on fixed prediction tensors: targets + train entrypoint
            (inline, device); the losses given the batch's targets (loader)
  targets   the targets entrypoint alone (forward, no grad: what a data-loader worker runs with
            targets: loader; for CenterNet on the collate's zero-stride heat-map stand-in)
  worker    (loader) the whole collate of a worker: batching the samples + the targets, on one
            thread (torch in a DataLoader worker process runs on one)
The OM share is om / step; "vs <first mode>" is the step's ratio to the first mode's step of the
same run. Reports the best of the repeats (the machine is shared; the minimum is the least
disturbed), images/s = batch / step, and the load average.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.config import load_config  # noqa: E402
from runtime.model import TARGETS_KEY, OMModel, TargetsCollate  # noqa: E402

COLUMNS = ("step", "network", "om", "targets", "worker")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--centernet", action="store_true",
                   help="CenterNet (train/configs/centernet_synthetic.yaml, modes inline device loader)")
    p.add_argument("--config", default=None,
                   help="training config (default: train/configs/synthetic_demo.yaml, or the CenterNet one)")
    p.add_argument("--modes", default=None,
                   help="targets modes, comma-separated; the first is the baseline of the ratios "
                        "(default: device,inline; CenterNet: inline,device,loader)")
    p.add_argument("--steps", type=int, default=6, help="repeats (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[])
    a = p.parse_args(argv)
    config = a.config or str(ROOT / ("train/configs/centernet_synthetic.yaml" if a.centernet
                                     else "train/configs/synthetic_demo.yaml"))
    modes = (a.modes or ("inline,device,loader" if a.centernet else "device,inline")).split(",")
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"data.root={tmp}/data", "data.generate.train=64", "data.generate.val=4", *a.set])
        torch.manual_seed(0)
        models, collates, ds = (_centernet if a.centernet else _panoptic)(cfg, modes)
        if cfg.get("train", {}).get("channels_last"):
            next(iter(models.values())).network.to(memory_format=torch.channels_last)
        bs = int(cfg["train"]["batch_size"])
        results = bench(models, collates, ds, bs, a.steps)
    crop = cfg["data"].get("crop_size")
    base = modes[0]
    print(f"config {Path(config).name}: batch {bs}, crop {crop}, {a.threads} threads, torch {torch.__version__}, "
          f"load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, best of {a.steps}")
    print(f"| targets mode | step (s) | step vs {base} | images/s | network fwd+bwd (s) | OM fwd+bwd (s) | OM share "
          "| targets alone (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in modes:
        r = results[mode]
        print(f"| {mode} | {r['step']:.4f} | {r['step'] / results[base]['step']:.2f} | {bs / r['step']:.1f} | "
              f"{results['network']:.4f} | {r['om']:.4f} | {100 * r['om'] / r['step']:.1f} % | {results['targets']:.4f} |")
    if "worker" in results:
        w, t = results["worker"], results["targets"]
        print(f"loader worker per batch (collate + targets, 1 thread as in a DataLoader worker): {w:.4f} s "
              f"(targets alone, {a.threads} threads: {t:.4f} s); {w / results['loader']['step']:.2f} of a loader step")
    return 0


def _panoptic(cfg, modes):
    from train.cli import _train_collate, build_dataset, build_model

    ds = build_dataset(cfg, "train", train=True)
    collate = functools.partial(_train_collate, void_id=ds.void_id)
    first = None
    models, collates = {}, {}
    for mode in modes:
        cfg["om"]["targets"] = mode
        m = build_model(cfg, ds.num_classes, ds.thing_train_ids)
        first = first or m
        models[mode] = _share(m, first.network)
        collates[mode] = _loader_collate(collate, m) if mode == "loader" else collate
    return models, collates, ds


def _centernet(cfg, modes):
    from train.centernet import build_dataset, build_model, make_collate

    ds = build_dataset(cfg, cfg["data"].get("train_split", "train"), train=True)
    first = None
    models, collates = {}, {}
    for mode in modes:
        cfg["om"]["targets"] = mode
        m = build_model(cfg, ds.num_classes)
        first = first or m
        models[mode] = _share(m, first.network)
        # as train/centernet.py + runtime.Trainer: loader batches get the heat-map stand-in, then the targets
        collates[mode] = (_loader_collate(make_collate(cfg, train=True), m) if mode == "loader"
                          else make_collate(cfg))
    return models, collates, ds


def _share(model: OMModel, network: torch.nn.Module) -> OMModel:
    """The model, on the one network all modes share (so the network costs the same in every mode)."""
    model.network = network
    return model


def _loader_collate(collate, model: OMModel) -> TargetsCollate:
    return TargetsCollate(collate, model.om, model.om_config, model.truth_map)


def bench(models, collates, ds, batch_size: int, steps: int):
    n = steps + 2
    samples = [[ds[(i * batch_size + j) % len(ds)] for j in range(batch_size)] for i in range(n)]
    batches = {mode: [collates[mode](s) for s in samples] for mode in models}
    first = next(iter(models.values()))
    opt = torch.optim.Adam(first.network.parameters(), 1e-4)
    for m in models.values():
        m.train()
    times = {}
    tasks = []
    for mode, model in models.items():
        tasks.append((f"step/{mode}", functools.partial(_step, model, opt)))
        tasks.append((f"om/{mode}", functools.partial(_om, model)))
    tasks.append(("network", functools.partial(_network, first, opt)))
    tasks.append(("targets", functools.partial(_targets, first)))
    if "loader" in collates:
        tasks.append(("worker", _timed(collates["loader"], threads=1)))
    for i in range(n):
        k = i % len(tasks)
        for name, fn in tasks[k:] + tasks[:k]:  # rotating order: no column always runs first or after the same one
            mode = name.split("/")[-1] if "/" in name else next(iter(models))
            if name == "worker":
                arg = samples[i]
            else:
                arg = batches[mode][i]
            t = fn(arg)
            if i >= 2:
                times.setdefault(name, []).append(t)
    best = {k: min(v) for k, v in times.items()}
    results = {mode: {"step": best[f"step/{mode}"], "om": best[f"om/{mode}"]} for mode in models}
    results.update({k: v for k, v in best.items() if "/" not in k})
    return results


def _step(model: OMModel, opt, batch) -> float:
    t = time.perf_counter()
    losses = model(batch)
    opt.zero_grad()
    losses[model.loss_key].backward()
    opt.step()
    return time.perf_counter() - t


def _network(model: OMModel, opt, batch) -> float:
    t = time.perf_counter()
    out = model.network(*model.network_args(batch))
    loss = sum(v.float().mean() for v in out.values())
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def _predictions(model: OMModel, batch):
    with torch.no_grad():
        out = model.network(*model.network_args(batch))
    return {k: v.detach().requires_grad_(v.is_floating_point()) for k, v in model.predictions(out).items()}


def _om(model: OMModel, batch) -> float:
    """OM forward + backward on fixed predictions (made outside the timing)."""
    preds = _predictions(model, batch)
    t = time.perf_counter()
    if model.targets_mode == "inline":
        losses = model.losses(preds, model.truths(batch, model.train_truth))
    else:
        if model.targets_mode == "device":
            targets = model.compute_targets(model.truths(batch, model.targets_truth), preds)
        else:
            targets = batch[TARGETS_KEY]
        losses = model.losses(preds, model.truths(batch, model.train_truth, required=False), targets)
    losses[model.loss_key].backward()
    return time.perf_counter() - t


def _targets(model: OMModel, batch) -> float:
    """The targets entrypoint, no grad, as a loader worker runs it: its size input (the output grid) from the
    image size and the output stride."""
    truths = model.truths(batch, model.targets_truth)
    _, _, h, w = batch["image"].shape
    stride = int({**model.om.defaults, **model.om_config}.get("output_stride", 4))
    sizes = {name: [h // stride, w // stride] for name in model.om.size_inputs}
    t = time.perf_counter()
    with torch.no_grad():
        model.compute_targets({**truths, **sizes})
    return time.perf_counter() - t


def _timed(fn, threads: int):
    """fn's time on `threads` threads (a DataLoader worker process runs torch on one)."""
    def run(arg):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            t = time.perf_counter()
            fn(arg)
            return time.perf_counter() - t
        finally:
            torch.set_num_threads(before)
    return run


if __name__ == "__main__":
    raise SystemExit(main())
