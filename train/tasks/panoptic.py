"""The panoptic task: Panoptic-DeepLab (specs/panoptic.yaml) on COCO / Cityscapes panoptic or the synthetic shapes.

Network: train/model/panoptic_deeplab.py behind Normalize; batches: image +
``panoptic`` id maps (train/data); evaluation: PQ / SQ / RQ and mIoU
(runtime.evaluation) with per-image panels (train/visualize.py).
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Dict, Mapping

import torch
from torch import Tensor, nn

from runtime.config import ConfigError
from runtime.model import OMModel
from runtime.om import OM
from runtime.progress import bar
from runtime.trainer import to_device

from .base import DeploySpec, Task, data_root, ensure_generated

__all__ = ["PanopticTask", "PanopticNetwork", "build_network", "ensure_synthetic", "pad_collate", "train_collate"]


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

    m = dict(cfg.get("model", {}) or {})
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


def ensure_synthetic(data: Mapping[str, Any]) -> Path:
    """Generate the synthetic shapes (train/data/synthetic.py) under data.root unless they are there."""
    from train.data.synthetic import write_dataset

    return ensure_generated(data, write_dataset, {"train": 400, "val": 50, "size": 128, "seed": 0},
                            "synthetic dataset")


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


def train_collate(samples, void_id: int):
    from train.data import collate_panoptic

    return collate_panoptic(samples, void_id=void_id)


class PanopticTask(Task):
    name = "panoptic"
    spec = "specs/panoptic.yaml"
    default_targets = "device"
    metric, metric_label = "pq", "PQ"
    datasets = ("synthetic", "coco", "cityscapes")
    data_keys = ("crop_size", "scale_range", "flip_prob", "image_pad")
    model_keys = ("arch", "output_stride", "backbone_width", "overrides", "backbone_checkpoint")
    eval_keys = ("visualize", "official")

    def synthetic(self, cfg):
        return ensure_synthetic(cfg["data"]) if cfg["data"].get("dataset", "synthetic") == "synthetic" else None

    def dataset(self, cfg, split, *, train):
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
            ds = CocoPanoptic.from_root(ensure_synthetic(data), split, transform=transform, seed=seed)
        elif kind == "coco":
            ds = CocoPanoptic.from_root(data_root(data["root"]), split, transform=transform, seed=seed)
        elif kind == "cityscapes":
            ds = CityscapesPanoptic(data_root(data["root"]), split, transform=transform, seed=seed)
        else:
            raise ConfigError(f"data.dataset: unknown {kind!r} (synthetic, coco, cityscapes)")
        if transform is not None:
            transform.void_id = ds.void_id
        return ds

    def collate(self, cfg, dataset, *, train):
        if train:
            return functools.partial(train_collate, void_id=dataset.void_id)
        return functools.partial(pad_collate, void_id=dataset.void_id)

    def network(self, cfg, om: OM, om_config, dataset):
        num_classes, thing_ids = dataset.num_classes, dataset.thing_train_ids
        variant = cfg["om"].get("variant", "base")
        effective = {**om.defaults, **om_config}
        if "num_classes" in effective and int(effective["num_classes"]) != num_classes:
            raise ConfigError(f"om: variant {variant!r} has num_classes {effective['num_classes']} but the dataset "
                              f"has {num_classes}; set om.config.num_classes or pick the dataset's variant")
        if "thing_ids" in effective and sorted(effective["thing_ids"]) != sorted(thing_ids):
            raise ConfigError(f"om: variant {variant!r} has thing_ids {effective['thing_ids']} but the dataset's "
                              f"things are {list(thing_ids)}")
        return build_network(cfg, num_classes)

    def evaluator(self, cfg, val_ds, out_dir: Path):
        from runtime.evaluation import MeanIoU, PanopticQuality
        from train.visualize import save_sample

        e = dict(cfg.get("eval", {}) or {})
        batch_size = int(e.get("batch_size", 8))
        n_vis = int(e.get("visualize", 4))
        limit = e.get("limit")
        official = bool(e.get("official", False))
        kind = cfg["data"].get("dataset", "synthetic")
        collate = self.collate(cfg, val_ds, train=False)

        def evaluate(model: OMModel, step: int) -> Dict[str, Any]:
            device = next(model.network.parameters()).device
            cfg_om = {**model.om.defaults, **model.om_config}
            divisor, ignore = int(cfg_om.get("label_divisor", 1000)), int(cfg_om.get("ignore_label", 255))
            pq = PanopticQuality(val_ds.num_classes, list(val_ds.thing_train_ids), divisor, ignore)
            miou = MeanIoU(val_ds.num_classes, ignore, label_divisor=divisor)
            writer = None
            if official:
                from train.data.official_eval import PanopticPredictionWriter

                writer = PanopticPredictionWriter(out_dir, val_ds)
            loader = torch.utils.data.DataLoader(val_ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
            t = time.perf_counter()
            seen = 0
            vis_dir = out_dir / "visuals"
            for batch in bar(loader, "eval (PQ)", "batch"):
                if limit is not None and seen >= int(limit):
                    break
                batch = to_device(batch, device)
                out = model.predict(batch)
                pred, truth = out["panoptic_pred"], batch["panoptic"]
                sizes = batch["image_size"].tolist()
                if all(tuple(hw) == tuple(pred.shape[-2:]) for hw in sizes):
                    pq.update(pred, truth)
                else:  # padded to the network's stride: score each image on its own pixels only
                    for i, (h, w) in enumerate(sizes):
                        pq.update(pred[i:i + 1, :, :h, :w], truth[i:i + 1, :, :h, :w])
                miou.update(pred, truth)
                for i, (h, w) in enumerate(sizes):
                    if writer is not None:
                        writer.add(int(batch["index"][i]), pred[i, 0, :h, :w].cpu().numpy())
                    if seen + i < n_vis:
                        save_sample(vis_dir, f"val_{seen + i:03d}", batch["image"][i], pred[i], truth[i],
                                    center=out.get("center_heatmap", [None] * pred.shape[0])[i],
                                    offsets=(out["offsets"][i] if "offsets" in out else None),
                                    centers=out["centers_pred"][i] if "centers_pred" in out else None,
                                    center_valid=out["center_valid"][i] if "center_valid" in out else None,
                                    label_divisor=divisor, ignore_label=ignore, num_classes=val_ds.num_classes,
                                    class_names=getattr(val_ds, "class_names", None),
                                    class_colors=getattr(getattr(val_ds, "categories", None), "colors", None))
                seen += pred.shape[0]
            seconds = time.perf_counter() - t
            r = pq.compute()
            m = miou.compute()
            result = {"pq": 100 * float(r["pq"]), "sq": 100 * float(r["sq"]), "rq": 100 * float(r["rq"]),
                      "pq_things": 100 * float(r["pq_things"]), "pq_stuff": 100 * float(r["pq_stuff"]),
                      "miou": 100 * float(m["miou"]), "images": seen, "eval_seconds": seconds,
                      "per_class_pq": [round(100 * float(v), 2) for v in r["per_class_pq"]]}
            if writer is not None:
                from train.data.official_eval import official_panoptic_quality

                ref = official_panoptic_quality(kind, writer, out_dir)
                ours = [100 * float(v) for v in r["per_class_pq"]]
                result["official"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ref.items()
                                      if not k.startswith("per_class")}
                result["official"]["per_class_pq"] = [round(v, 2) for v in ref["per_class_pq"]]
                result["official"]["max_abs_diff_pq"] = max(
                    [abs(result["pq"] - ref["pq"])] + [abs(a - b) for a, b in zip(ours, ref["per_class_pq"])])
            return result

        return evaluate

    def summary(self, e):
        line = (f"PQ {e['pq']:.1f}  SQ {e['sq']:.1f}  RQ {e['rq']:.1f}  PQ_th {e['pq_things']:.1f}  "
                f"PQ_st {e['pq_stuff']:.1f}  mIoU {e['miou']:.1f}  ({e['images']} val images)")
        if "official" in e:
            o = e["official"]
            line += (f"\nofficial ({o['evaluator']}): PQ {o['pq']:.1f}  SQ {o['sq']:.1f}  RQ {o['rq']:.1f}; largest "
                     f"difference from ours {o['max_abs_diff_pq']:.2g} PQ points")
        return line

    def deploy_spec(self, cfg, om_config):
        from train.model import IMAGENET_MEAN, IMAGENET_STD

        divisor, ignore = int(om_config.get("label_divisor", 1000)), int(om_config.get("ignore_label", 255))
        return DeploySpec(tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), 32, 0,
                          ("panoptic_pred", "semantic_pred", "instance_pred", "centers_pred", "center_scores",
                           "center_valid"),
                          {"thing_ids": [int(t) for t in om_config.get("thing_ids", [])],
                           "label_divisor": divisor, "ignore_label": ignore, "void_id": ignore * divisor,
                           "num_classes": int(om_config.get("num_classes", 0))},
                          crop_outputs=True)
