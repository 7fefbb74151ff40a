"""`python -m train.centernet`: train and evaluate CenterNet (ctdet) through the generic runtime.

    python -m train.centernet train train/configs/centernet_synthetic.yaml --set train.steps=300
    python -m train.centernet train CONFIG --set om.variant=radius-fix --out runs/cn_fix
    python -m train.centernet eval  CONFIG --checkpoint runs/centernet_synthetic/last.pt
    python -m train.centernet eval  CONFIG --set om.variant=oracle-all      # no checkpoint: ground-truth oracle

The network (train/model/centernet.py) returns the OM's prediction inputs by
name; the batch carries its truth inputs (``boxes`` [N,M,4], ``classes``
[N,M], train/data/detection.py); runtime.OMModel joins them with the generated
OM (specs/centernet.yaml, any variant) and runtime.Trainer runs the loop,
checkpoints and logging. Evaluation: COCO box AP / AP50 / AP75
(runtime.detection_eval.BoxAP). Errors the user can fix print as one line,
exit status 1.
"""
from __future__ import annotations

import argparse
import functools
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import torch

from runtime import checkpoint as ckpt
from runtime.config import ConfigError, load_config
from runtime.detection_eval import BoxAP
from runtime.distributed import pick_device
from runtime.model import OMModel
from runtime.om import om_from_config
from runtime.trainer import Trainer, TrainSettings, seed_everything, to_device

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
DEFAULT_OUTPUTS = {"boxes": "boxes_pred", "scores": "scores_pred", "classes": "classes_pred"}


def _root(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path.cwd() / p


# ------------------------------------------------------------------------------------ data
def build_dataset(cfg: Mapping[str, Any], split: str, *, train: bool):
    """A detection dataset: synthetic / coco_panoptic / cityscapes (boxes from masks) or coco (instances JSON)."""
    from train.data import CityscapesPanoptic, CocoPanoptic, PanopticAugment
    from train.data.detection import CocoDetection, DetectionAugment, PanopticDetection

    data = cfg["data"]
    kind = data.get("dataset", "synthetic")
    seed = int(cfg.get("seed", 0))
    crop = data.get("crop_size")
    if kind == "coco":
        transform = None
        if train:
            transform = DetectionAugment(size=tuple(crop) if crop else None,
                                         scale_range=tuple(data.get("scale_range", (0.6, 1.4))),
                                         flip_prob=float(data.get("flip_prob", 0.5)))
        return CocoDetection.from_root(_root(data["root"]), split, transform=transform, seed=seed,
                                       skip_empty=train and bool(data.get("skip_empty", True)))
    transform = None
    if train:
        transform = PanopticAugment(crop_size=tuple(crop) if crop else None,
                                    scale_range=tuple(data.get("scale_range", (0.75, 1.25))),
                                    flip_prob=float(data.get("flip_prob", 0.5)), image_pad=data.get("image_pad", 0))
    if kind == "synthetic":
        from train.cli import ensure_synthetic

        ds = CocoPanoptic.from_root(ensure_synthetic(data), split, transform=transform, seed=seed)
    elif kind == "coco_panoptic":
        ds = CocoPanoptic.from_root(_root(data["root"]), split, transform=transform, seed=seed)
    elif kind == "cityscapes":
        ds = CityscapesPanoptic(_root(data["root"]), split, transform=transform, seed=seed)
    else:
        raise ConfigError(f"data.dataset: unknown {kind!r} (synthetic, coco, coco_panoptic, cityscapes)")
    if transform is not None:
        transform.void_id = ds.void_id
    return PanopticDetection(ds)


def make_collate(cfg: Mapping[str, Any], num_classes: Optional[int] = None):
    """Batches of the detection views; with ``om.targets: loader`` (and the training set's ``num_classes``)
    each batch also holds the ``heatmap`` stand-in that the OM's targets entrypoint reads for its grid."""
    from train.data.detection import collate_detection

    m = cfg["data"].get("max_objects")
    collate = functools.partial(collate_detection, max_objects=None if m is None else int(m))
    if cfg["om"].get("targets", "inline") != "loader" or num_classes is None:
        return collate
    om_config = dict(cfg["om"].get("config", {}) or {})
    name = dict(cfg["om"].get("truth", {}) or {}).get("heatmap", "heatmap")
    return functools.partial(collate_with_grid, collate=collate, key=name,
                             channels=int(om_config.get("num_classes", num_classes)),
                             stride=int(om_config.get("output_stride", 4)))


def collate_with_grid(samples, *, collate, key: str, channels: int, stride: int) -> Dict[str, Any]:
    """``collate``, plus ``batch[key]``: a zero-stride [N, C, H / stride, W / stride] stand-in for the
    network's heat map (no memory), which runtime.model.TargetsCollate drops once the targets are made."""
    batch = collate(samples)
    n, _, h, w = batch["image"].shape
    batch[key] = torch.zeros(()).expand(n, channels, h // stride, w // stride)
    return batch


# ------------------------------------------------------------------------------------ model
def build_model(cfg: Dict[str, Any], num_classes: int) -> OMModel:
    from train.model.centernet import CenterNet

    o = cfg["om"]
    om, om_config = om_from_config(o, "specs/centernet.yaml")
    om_config.setdefault("num_classes", num_classes)
    if int(om_config["num_classes"]) != num_classes:
        raise ConfigError(f"om.config.num_classes is {om_config['num_classes']} but the dataset has {num_classes} "
                          "detection classes")
    m = dict(cfg.get("model", {}) or {})
    class_specific = m.pop("class_specific_size", None)
    if class_specific is None:
        class_specific = "class-specific-size" in getattr(om.module, "MIXINS", ())
    offset_head = m.pop("offset_head", None)
    if offset_head is None:  # as published --not_reg_offset: no head that gets no gradient (DDP refuses those)
        offset_head = "no-offset" not in getattr(om.module, "MIXINS", ())
    known = {"backbone", "backbone_width", "neck_channels", "head_channels"}
    if set(m) - known:
        raise ConfigError(f"model: unknown keys {sorted(set(m) - known)} ({', '.join(sorted(known))}, "
                          "class_specific_size, offset_head)")
    network = CenterNet(num_classes, class_specific_size=bool(class_specific), offset_head=bool(offset_head), **m)
    return OMModel(network, om, config=om_config, outputs=o.get("outputs"), truth=o.get("truth"),
                   network_inputs=o.get("network_inputs", ["image"]), targets=o.get("targets", "inline"))


def settings_from(cfg: Mapping[str, Any]) -> TrainSettings:
    values = dict(cfg.get("train", {}) or {})
    values.setdefault("seed", int(cfg.get("seed", 0)))
    values.setdefault("out_dir", cfg.get("out_dir", "runs/centernet"))
    return TrainSettings.from_dict(values)


# ------------------------------------------------------------------------------------ evaluation
def detect(model: OMModel, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Network -> OM infer entrypoint (OMModel.predict: oracle variants read the batch's truth inputs)."""
    return model.predict(batch)


def make_evaluator(cfg: Mapping[str, Any], val_ds):
    e = dict(cfg.get("eval", {}) or {})
    batch_size = int(e.get("batch_size", 16))
    limit = e.get("limit")
    min_score = float(e.get("min_score", 0.0))
    names = {**DEFAULT_OUTPUTS, **dict(e.get("outputs", {}) or {})}
    collate = make_collate(cfg)

    def evaluate(model: OMModel, step: int) -> Dict[str, Any]:
        device = next(model.network.parameters()).device
        was_training = model.training
        model.eval()
        top_k = int({**model.om.defaults, **model.om_config}.get("top_k", 100))
        ap = BoxAP(val_ds.num_classes, min_score=min_score, max_dets=top_k)
        loader = torch.utils.data.DataLoader(val_ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
        t = time.perf_counter()
        for batch in loader:
            if limit is not None and ap.images >= int(limit):
                break
            gt = batch["gt"]
            det = detect(model, to_device(batch, device))
            ap.update(det[names["boxes"]], det[names["scores"]], det[names["classes"]],
                      [g["boxes"] for g in gt], [g["classes"] for g in gt], [g["iscrowd"] for g in gt],
                      [g["area"] for g in gt], image_sizes=[g["size"] for g in gt])
        seconds = time.perf_counter() - t
        r = ap.compute()
        model.train(was_training)
        return {**{k: 100.0 * v for k, v in r.items()}, "images": ap.images, "eval_seconds": seconds}

    return evaluate


# ------------------------------------------------------------------------------------ commands
def run_training(cfg: Dict[str, Any], *, resume: Optional[str] = None, evaluate: bool = True,
                 on_step=None) -> Dict[str, Any]:
    seed_everything(int(cfg.get("seed", 0)))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    settings = settings_from(cfg)
    train_ds = build_dataset(cfg, cfg["data"].get("train_split", "train"), train=True)
    model = build_model(cfg, train_ds.num_classes)
    evaluator = None
    if evaluate and (cfg.get("eval", {}) or {}).get("enabled", True):
        val_ds = build_dataset(cfg, cfg["data"].get("val_split", "val"), train=False)
        evaluator = make_evaluator(cfg, val_ds)
    trainer = Trainer(model, train_ds, make_collate(cfg, train_ds.num_classes), settings, evaluate=evaluator, config=cfg, on_step=on_step)
    try:
        result = trainer.fit(resume=resume)
    finally:
        trainer.close()
    result["model"] = model
    result["rank"] = trainer.dist.rank
    return result


def _load(args) -> Dict[str, Any]:
    cfg = load_config(args.config, args.set)
    if getattr(args, "out", None):
        cfg["out_dir"] = args.out
    return cfg


def cmd_train(args) -> int:
    cfg = _load(args)
    t = time.perf_counter()
    result = run_training(cfg, resume=args.resume, evaluate=not args.no_eval)
    if result["rank"] != 0:
        return EXIT_OK
    last = result["history"][-1] if result["history"] else {}
    summary = {"variant": cfg["om"].get("variant", "base"), "seed": int(cfg.get("seed", 0)), "steps": result["step"],
               "train_seconds": round(result["seconds"], 1), "total_seconds": round(time.perf_counter() - t, 1),
               "last_loss": last.get("loss"), "checkpoint": result["checkpoint"]}
    if "eval" in result:
        summary.update({k: (round(v, 2) if isinstance(v, float) else v) for k, v in result["eval"].items()})
    out = Path(settings_from(cfg).out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return EXIT_OK


def cmd_eval(args) -> int:
    cfg = _load(args)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    val_ds = build_dataset(cfg, cfg["data"].get("val_split", "val"), train=False)
    model = build_model(cfg, val_ds.num_classes)
    if args.checkpoint:
        load_weights(model.network, args.checkpoint)
    elif not str(cfg["om"].get("variant", "base")).startswith("oracle"):
        warnings.warn("no --checkpoint: evaluating an untrained network", stacklevel=1)
    device = pick_device(str((cfg.get("train", {}) or {}).get("device", "auto")))  # as training: CUDA if there
    metrics = make_evaluator(cfg, val_ds)(model.to(device).eval(), 0)
    print(json.dumps({**{k: (round(v, 3) if isinstance(v, float) else v) for k, v in metrics.items()},
                      "device": str(device)}))
    return EXIT_OK


def load_weights(network: torch.nn.Module, path: str) -> None:
    """A checkpoint's network weights; for a no-offset network the offset head of a checkpoint trained with
    one is skipped with a warning (the published code loads across --not_reg_offset the same way)."""
    if ckpt.load_network(network, path, skippable=("offset_head.",)):
        warnings.warn(f"{path}: the checkpoint's offset head is not used by this variant (no-offset)", stacklevel=2)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.centernet", description="Train and evaluate CenterNet (ctdet).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(c: argparse.ArgumentParser) -> None:
        c.add_argument("config", help="YAML config (train/configs/centernet_*.yaml)")
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, dotted keys (train.steps=100, om.variant=radius-fix)")
        c.add_argument("--out", default=None, help="output folder (config out_dir)")

    c = sub.add_parser("train", help="train, then evaluate box AP on the val split")
    common(c)
    c.add_argument("--resume", default=None, help="checkpoint to resume from, or 'auto' (OUT/last.pt if present)")
    c.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    c.set_defaults(run=cmd_train)
    c = sub.add_parser("eval", help="box AP / AP50 / AP75 of a checkpoint (oracle variants need none)")
    common(c)
    c.add_argument("--checkpoint", default=None)
    c.set_defaults(run=cmd_eval)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from runtime.cli import run_command

    return run_command(_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
