"""`python -m train` (console script `omgen-train`): train, eval, export, demo.

    python -m train train train/configs/synthetic_demo.yaml --set train.steps=100
    python -m train eval  CONFIG --checkpoint runs/x/last.pt   (an oracle variant: no checkpoint)
    python -m train export CONFIG --checkpoint runs/x/last.pt --out model.ts
    python -m train demo                      # synthetic data -> train -> eval -> export, prints PQ
    torchrun --nproc_per_node 2 -m train train CONFIG   # DDP, same config

Errors the user can fix (a bad config, a corrupt image, a non-finite loss)
print as one line on stderr, exit status 1; usage errors exit 2.
This module holds what is specific to panoptic segmentation (datasets,
network, PQ); the loop, checkpoints, DDP and the OM plumbing are in runtime/.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from runtime import checkpoint as ckpt
from runtime.config import ConfigError, load_config
from runtime.distributed import pick_device
from runtime.model import OMModel
from runtime.om import PROJECT_ROOT, om_from_config
from runtime.trainer import Trainer, TrainSettings, seed_everything, to_device

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEMO_CONFIG = CONFIG_DIR / "synthetic_demo.yaml"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


# ------------------------------------------------------------------------------------ network
class PanopticNetwork(nn.Module):
    """uint8 images [N, 3, H, W] -> Normalize -> Panoptic-DeepLab -> dict of logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        from train.model import Normalize

        self.normalize = Normalize()
        self.net = net

    def forward(self, image: Tensor) -> Dict[str, Tensor]:
        return self.net(self.normalize(image))


def build_network(cfg: Mapping[str, Any], num_classes: int) -> PanopticNetwork:
    from train.model import build_panoptic_deeplab, small_config
    from train.model.panoptic_deeplab import PanopticDeepLabConfig

    m = dict(cfg.get("model", {}))
    arch = m.pop("arch", "small")
    overrides = dict(m.pop("overrides", {}) or {})
    backbone_ckpt = m.pop("backbone_checkpoint", None)
    for key in ("aspp_dilations", "sem_skip_channels", "ins_skip_channels", "skip_keys"):
        if key in overrides and overrides[key] is not None:
            overrides[key] = tuple(overrides[key])
    if arch == "small":
        base = small_config(num_classes, int(m.pop("output_stride", 16)), int(m.pop("backbone_width", 64)))
    elif arch in ("r50", "resnet50"):
        base = PanopticDeepLabConfig(num_classes=num_classes, backbone="resnet50",
                                     output_stride=int(m.pop("output_stride", 16)),
                                     backbone_width=int(m.pop("backbone_width", 64)))
    else:
        raise ConfigError(f"model.arch: unknown {arch!r} (small, r50)")
    if m:
        raise ConfigError(f"model: unknown keys {sorted(m)} (arch, output_stride, backbone_width, overrides, "
                          "backbone_checkpoint)")
    try:
        net = build_panoptic_deeplab(base, **overrides)
    except TypeError as exc:
        raise ConfigError(f"model.overrides: {exc}") from None
    if backbone_ckpt:
        net.load_backbone(str(backbone_ckpt))
    return PanopticNetwork(net)


# ------------------------------------------------------------------------------------ data
def _root(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path.cwd() / p


def ensure_synthetic(data: Mapping[str, Any]) -> Path:
    """Generate the synthetic dataset under data.root unless it is there (same settings)."""
    from train.data.synthetic import write_dataset

    root = _root(data["root"])
    gen = dict(data.get("generate", {}) or {})
    size = gen.get("size", 128)
    size = (size, size) if isinstance(size, int) else tuple(size)
    stamp = {"train": int(gen.get("train", 400)), "val": int(gen.get("val", 50)), "size": list(size),
             "seed": int(gen.get("seed", 0))}
    marker = root / "generated.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return root
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:  # under torchrun: local rank 0 writes, the others wait
        deadline = time.time() + 600
        while not (marker.exists() and json.loads(marker.read_text() or "null") == stamp):
            if time.time() > deadline:
                raise ConfigError(f"{marker}: local rank 0 did not finish generating the synthetic dataset")
            time.sleep(0.5)
        return root
    t = time.perf_counter()
    marker.unlink(missing_ok=True)
    write_dataset(root, stamp["train"], stamp["val"], size, stamp["seed"])
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp) + "\n")
    tmp.replace(marker)
    print(f"generated synthetic dataset ({stamp['train']} train + {stamp['val']} val, {size[0]}x{size[1]}) "
          f"in {root} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


def build_dataset(cfg: Mapping[str, Any], split: str, *, train: bool):
    from train.data import CityscapesPanoptic, CocoPanoptic, PanopticAugment

    data = cfg["data"]
    kind = data.get("dataset", "synthetic")
    transform = None
    if train:
        crop = data.get("crop_size")
        transform = PanopticAugment(crop_size=tuple(crop) if crop else None,
                                    scale_range=tuple(data.get("scale_range", (0.5, 2.0))),
                                    flip_prob=float(data.get("flip_prob", 0.5)),
                                    image_pad=data.get("image_pad", 0))
    seed = int(cfg.get("seed", 0))
    if kind == "synthetic":
        root = ensure_synthetic(data)
        ds = CocoPanoptic.from_root(root, split, transform=transform, seed=seed)
    elif kind == "coco":
        ds = CocoPanoptic.from_root(_root(data["root"]), split, transform=transform, seed=seed)
    elif kind == "cityscapes":
        ds = CityscapesPanoptic(_root(data["root"]), split, transform=transform, seed=seed)
    else:
        raise ConfigError(f"data.dataset: unknown {kind!r} (synthetic, coco, cityscapes)")
    if transform is not None:
        transform.void_id = ds.void_id
    return ds


def pad_collate(samples, *, void_id: int, multiple: int = 32):
    """collate_panoptic, padding the batch to a multiple of ``multiple`` (void in labels, 0 in images)."""
    from train.data import collate_panoptic

    batch = collate_panoptic(samples, void_id=void_id)
    h, w = batch["image"].shape[-2:]
    H, W = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if (H, W) != (h, w):
        img = torch.zeros(batch["image"].shape[:2] + (H, W), dtype=batch["image"].dtype)
        pan = torch.full(batch["panoptic"].shape[:2] + (H, W), void_id, dtype=batch["panoptic"].dtype)
        img[..., :h, :w] = batch["image"]
        pan[..., :h, :w] = batch["panoptic"]
        batch["image"], batch["panoptic"] = img, pan
    return batch


# ------------------------------------------------------------------------------------ OM + model
def build_model(cfg: Mapping[str, Any], num_classes: int, thing_ids: Sequence[int]) -> OMModel:
    o = cfg["om"]
    om, om_config = om_from_config(o, "specs/panoptic.yaml")
    effective = {**om.defaults, **om_config}
    if "num_classes" in effective and int(effective["num_classes"]) != num_classes:
        raise ConfigError(f"om: variant {o['variant']!r} has num_classes {effective['num_classes']} but the dataset "
                          f"has {num_classes}; set om.config.num_classes or pick the dataset's variant")
    if "thing_ids" in effective and sorted(effective["thing_ids"]) != sorted(thing_ids):
        raise ConfigError(f"om: variant {o['variant']!r} has thing_ids {effective['thing_ids']} but the dataset's "
                          f"things are {list(thing_ids)}")
    network = build_network(cfg, num_classes)
    return OMModel(network, om, config=om_config, outputs=o.get("outputs"), truth=o.get("truth"),
                   network_inputs=o.get("network_inputs", ["image"]), targets=o.get("targets", "device"))


def settings_from(cfg: Mapping[str, Any]) -> TrainSettings:
    values = dict(cfg.get("train", {}))
    values.setdefault("seed", int(cfg.get("seed", 0)))
    values.setdefault("out_dir", cfg.get("out_dir", "runs/default"))
    return TrainSettings.from_dict(values)


# ------------------------------------------------------------------------------------ evaluation
def make_evaluator(cfg: Mapping[str, Any], val_ds, out_dir: Path):
    from runtime.evaluation import MeanIoU, PanopticQuality
    from train.visualize import save_sample

    e = dict(cfg.get("eval", {}) or {})
    batch_size = int(e.get("batch_size", 8))
    n_vis = int(e.get("visualize", 4))
    limit = e.get("limit")

    def evaluate(model: OMModel, step: int) -> Dict[str, Any]:
        device = next(model.network.parameters()).device
        cfg_om = {**model.om.defaults, **model.om_config}
        divisor, ignore = int(cfg_om.get("label_divisor", 1000)), int(cfg_om.get("ignore_label", 255))
        pq = PanopticQuality(val_ds.num_classes, list(val_ds.thing_train_ids), divisor, ignore)
        miou = MeanIoU(val_ds.num_classes, ignore, label_divisor=divisor)
        loader = torch.utils.data.DataLoader(
            val_ds, batch_size=batch_size, shuffle=False,
            collate_fn=functools.partial(pad_collate, void_id=val_ds.void_id))
        t = time.perf_counter()
        seen = 0
        vis_dir = out_dir / "visuals"
        for batch in loader:
            if limit is not None and seen >= int(limit):
                break
            batch = to_device(batch, device)
            out = model.predict(batch)
            pred, truth = out["panoptic_pred"], batch["panoptic"]
            pq.update(pred, truth)
            miou.update(pred, truth)
            for i in range(pred.shape[0]):
                if seen + i < n_vis:
                    save_sample(vis_dir, f"val_{seen + i:03d}", batch["image"][i], pred[i], truth[i],
                                center=out.get("center_heatmap", [None] * pred.shape[0])[i],
                                offsets=(out["offsets"][i] if "offsets" in out else None),
                                centers=out["centers_pred"][i] if "centers_pred" in out else None,
                                center_valid=out["center_valid"][i] if "center_valid" in out else None,
                                label_divisor=divisor, ignore_label=ignore, num_classes=val_ds.num_classes)
            seen += pred.shape[0]
        seconds = time.perf_counter() - t
        r = pq.compute()
        m = miou.compute()
        return {"pq": 100 * float(r["pq"]), "sq": 100 * float(r["sq"]), "rq": 100 * float(r["rq"]),
                "pq_things": 100 * float(r["pq_things"]), "pq_stuff": 100 * float(r["pq_stuff"]),
                "miou": 100 * float(m["miou"]), "images": seen, "eval_seconds": seconds,
                "per_class_pq": [round(100 * float(v), 2) for v in r["per_class_pq"]]}

    return evaluate


# ------------------------------------------------------------------------------------ commands
def _load(args) -> Dict[str, Any]:
    cfg = load_config(args.config, args.set)
    if getattr(args, "out", None):
        cfg["out_dir"] = args.out
    return cfg


def run_training(cfg: Dict[str, Any], *, resume: Optional[str] = None, evaluate: bool = True,
                 on_step=None) -> Dict[str, Any]:
    seed_everything(int(cfg.get("seed", 0)))
    settings = settings_from(cfg)
    local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun: share the cores
    torch.set_num_threads(max(1, int(cfg.get("threads", torch.get_num_threads())) // local_procs))
    train_ds = build_dataset(cfg, cfg["data"].get("train_split", "train"), train=True)
    model = build_model(cfg, train_ds.num_classes, train_ds.thing_train_ids)
    evaluator = None
    if evaluate and cfg.get("eval", {}).get("enabled", True):
        val_ds = build_dataset(cfg, cfg["data"].get("val_split", "val"), train=False)
        evaluator = make_evaluator(cfg, val_ds, Path(settings.out_dir))
    collate = functools.partial(_train_collate, void_id=train_ds.void_id)
    trainer = Trainer(model, train_ds, collate, settings, evaluate=evaluator, config=cfg, on_step=on_step)
    try:
        result = trainer.fit(resume=resume)
    finally:
        trainer.close()
    result["model"] = model
    result["rank"] = trainer.dist.rank
    return result


def _train_collate(samples, void_id: int):
    from train.data import collate_panoptic

    return collate_panoptic(samples, void_id=void_id)


def model_from_checkpoint(cfg: Dict[str, Any], path: Optional[str | Path]) -> OMModel:
    """The config's model with a checkpoint's weights; without one (an oracle variant's upper bound, say) the
    network stays untrained, with a warning unless the variant is an oracle."""
    ds = build_dataset(cfg, cfg["data"].get("val_split", "val"), train=False)
    model = build_model(cfg, ds.num_classes, ds.thing_train_ids)
    if path is not None:
        ckpt.load_network(model.network, path)
    elif not str(cfg["om"].get("variant", "base")).startswith("oracle"):
        warnings.warn("no --checkpoint: evaluating an untrained network", stacklevel=2)
    return model.eval()


def cmd_train(args) -> int:
    cfg = _load(args)
    result = run_training(cfg, resume=args.resume)
    if result["rank"] == 0:
        _print_result(result)
    return EXIT_OK


def _print_result(result: Mapping[str, Any]) -> None:
    last = result["history"][-1] if result["history"] else {}
    print(f"trained to step {result['step']} in {result['seconds']:.1f} s; last loss {last.get('loss', float('nan')):.4f}; "
          f"checkpoint {result['checkpoint']}")
    if "eval" in result:
        e = result["eval"]
        print(f"PQ {e['pq']:.1f}  SQ {e['sq']:.1f}  RQ {e['rq']:.1f}  PQ_th {e['pq_things']:.1f}  "
              f"PQ_st {e['pq_stuff']:.1f}  mIoU {e['miou']:.1f}  ({e['images']} val images)")


def cmd_eval(args) -> int:
    cfg = _load(args)
    device = pick_device(str((cfg.get("train", {}) or {}).get("device", "auto")))  # as training: CUDA if there
    model = model_from_checkpoint(cfg, args.checkpoint).to(device)
    val_ds = build_dataset(cfg, cfg["data"].get("val_split", "val"), train=False)
    out = Path(cfg.get("out_dir", "runs/default"))
    metrics = make_evaluator(cfg, val_ds, out)(model, 0)
    print(json.dumps({**metrics, "device": str(device)}))
    return EXIT_OK


def export_model(checkpoint: str | Path, path: str | Path) -> Path:
    """The deployable program (uint8 images in, panoptic maps out; train/deploy.py) of a checkpoint."""
    from train.deploy import export_deployment

    return export_deployment(checkpoint, path)


def cmd_export(args) -> int:
    path = export_model(args.checkpoint, args.output)
    print(f"wrote {path}")
    return EXIT_OK


def cmd_demo(args) -> int:
    t0 = time.perf_counter()
    cfg = load_config(args.config or DEMO_CONFIG, args.set)
    if args.out:
        cfg["out_dir"] = args.out
        cfg["data"]["root"] = str(Path(args.out) / "data")
    out = Path(cfg["out_dir"])
    ensure_synthetic(cfg["data"])
    t_data = time.perf_counter() - t0
    result = run_training(cfg, resume="auto" if args.resume else None)
    result["model"].eval()
    _print_result(result)
    sys.stdout.flush()
    t_export = time.perf_counter()
    path = export_model(result["checkpoint"], out / "model.ts")
    t_export = time.perf_counter() - t_export
    total = time.perf_counter() - t0
    e = result.get("eval", {})
    summary = {"pq": e.get("pq"), "sq": e.get("sq"), "rq": e.get("rq"), "pq_things": e.get("pq_things"),
               "pq_stuff": e.get("pq_stuff"), "miou": e.get("miou"), "steps": result["step"],
               "stopped_by_time": result.get("stopped_by_time", False),
               "train_seconds": round(result["seconds"], 1), "data_seconds": round(t_data, 1),
               "eval_seconds": round(e.get("eval_seconds", 0.0), 1), "export_seconds": round(t_export, 1),
               "total_seconds": round(total, 1), "export": str(path), "visuals": str(out / "visuals")}
    (out / "demo.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"exported {path}; visuals in {out / 'visuals'}")
    print(f"demo: PQ {summary['pq']:.1f} on the synthetic val split in {total:.0f} s total "
          f"(data {t_data:.0f} s, train {result['seconds']:.0f} s, eval {summary['eval_seconds']:.0f} s, "
          f"export {t_export:.0f} s)")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description="Train, evaluate and export omgen models.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(c: argparse.ArgumentParser, config_required: bool = True) -> None:
        if config_required:
            c.add_argument("config", help="YAML config (train/configs/*.yaml)")
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, dotted keys (train.steps=100); repeatable")
        c.add_argument("--out", default=None, help="output folder (config out_dir)")

    c = sub.add_parser("train", help="train (resumes from --resume PATH or 'auto')")
    common(c)
    c.add_argument("--resume", default=None, help="checkpoint to resume from, or 'auto' (OUT/last.pt if present)")
    c.set_defaults(run=cmd_train)
    c = sub.add_parser("eval", help="evaluate a checkpoint (PQ, SQ, RQ, mIoU) and write visuals")
    common(c)
    c.add_argument("--checkpoint", default=None, help="weights to evaluate (an oracle variant needs none)")
    c.set_defaults(run=cmd_eval)
    c = sub.add_parser("export", help="one TorchScript file: normalisation + network + infer (train/deploy.py)")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--output", "-o", required=True)
    c.set_defaults(run=cmd_export)
    c = sub.add_parser("demo", help="synthetic data -> train -> eval -> export on the CPU; prints PQ")
    c.add_argument("--config", default=None, help=f"default {DEMO_CONFIG.relative_to(PROJECT_ROOT)}")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--out", default=None, help="output folder (default runs/demo; data in OUT/data)")
    c.add_argument("--resume", action="store_true", help="resume from OUT/last.pt if present")
    c.set_defaults(run=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from runtime.cli import run_command

    return run_command(_parser(), argv)

