"""The detection task: CenterNet ctdet (specs/centernet.yaml) on COCO instances, or boxes of the panoptic sets.

Network: train/model/centernet.py (returns the OM's prediction inputs by
name); batches: ``boxes`` [N, M, 4], ``classes`` [N, M] (train/data/detection.py);
evaluation: COCO box AP / AP50 / AP75 (runtime.detection_eval.BoxAP).
"""
from __future__ import annotations

import functools
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping

import torch

from runtime import checkpoint as ckpt
from runtime.config import ConfigError
from runtime.model import OMModel
from runtime.om import OM
from runtime.progress import bar
from runtime.trainer import to_device

from .base import DeploySpec, Task, data_root

__all__ = ["DetectionTask", "make_collate", "collate_with_grid", "DEFAULT_OUTPUTS"]

DEFAULT_OUTPUTS = {"boxes": "boxes_pred", "scores": "scores_pred", "classes": "classes_pred"}


def make_collate(cfg: Mapping[str, Any], train: bool = False):
    """Batches of the detection views; for training with ``om.targets: loader`` each batch also holds ``grid``, the output
    grid [H / stride, W / stride] the OM's targets are drawn on (its size input)."""
    from train.data.detection import collate_detection

    m = cfg["data"].get("max_objects")
    collate = functools.partial(collate_detection, max_objects=None if m is None else int(m))
    if cfg["om"].get("targets", "inline") != "loader" or not train:
        return collate
    om_config = dict(cfg["om"].get("config", {}) or {})
    name = dict(cfg["om"].get("truth", {}) or {}).get("grid", "grid")
    return functools.partial(collate_with_grid, collate=collate, key=name, stride=int(om_config.get("output_stride", 4)))


def collate_with_grid(samples, *, collate, key: str, stride: int) -> Dict[str, Any]:
    """``collate``, plus ``batch[key]``: the output grid [H // stride, W // stride] (the OM's size input
    ``grid``), which runtime.model.TargetsCollate passes to the targets entrypoint."""
    batch = collate(samples)
    _, _, h, w = batch["image"].shape
    batch[key] = [h // stride, w // stride]
    return batch


class DetectionTask(Task):
    name = "detection"
    spec = "specs/centernet.yaml"
    default_targets = "inline"
    default_out = "runs/centernet"
    metric, metric_label = "ap", "AP"
    datasets = ("synthetic", "coco", "coco_panoptic", "cityscapes")
    data_keys = ("crop_size", "scale_range", "flip_prob", "image_pad", "max_objects", "skip_empty")
    model_keys = ("backbone", "backbone_width", "neck_channels", "head_channels", "class_specific_size",
                  "offset_head")
    eval_keys = ("min_score", "outputs", "visualize")
    free_keys = Task.free_keys + ("eval.outputs",)

    def synthetic(self, cfg):
        from .panoptic import ensure_synthetic

        return ensure_synthetic(cfg["data"]) if cfg["data"].get("dataset", "synthetic") == "synthetic" else None

    def dataset(self, cfg, split, *, train):
        """A detection dataset: synthetic / coco_panoptic / cityscapes (boxes from masks) or coco (instances)."""
        from train.data import CityscapesPanoptic, CocoPanoptic, PanopticAugment
        from train.data.detection import CocoDetection, DetectionAugment, PanopticDetection

        from .panoptic import ensure_synthetic

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
            return CocoDetection.from_root(data_root(data["root"]), split, transform=transform, seed=seed,
                                           skip_empty=train and bool(data.get("skip_empty", True)))
        transform = None
        if train:
            transform = PanopticAugment(crop_size=tuple(crop) if crop else None,
                                        scale_range=tuple(data.get("scale_range", (0.75, 1.25))),
                                        flip_prob=float(data.get("flip_prob", 0.5)),
                                        image_pad=data.get("image_pad", 0))
        if kind == "synthetic":
            ds = CocoPanoptic.from_root(ensure_synthetic(data), split, transform=transform, seed=seed)
        elif kind == "coco_panoptic":
            ds = CocoPanoptic.from_root(data_root(data["root"]), split, transform=transform, seed=seed)
        elif kind == "cityscapes":
            ds = CityscapesPanoptic(data_root(data["root"]), split, transform=transform, seed=seed)
        else:
            raise ConfigError(f"data.dataset: unknown {kind!r} (synthetic, coco, coco_panoptic, cityscapes)")
        if transform is not None:
            transform.void_id = ds.void_id
        return PanopticDetection(ds)

    def collate(self, cfg, dataset, *, train):
        return make_collate(cfg, train)

    def network(self, cfg, om: OM, om_config, dataset):
        from train.model.centernet import CenterNet

        num_classes = dataset.num_classes
        om_config.setdefault("num_classes", num_classes)
        if int(om_config["num_classes"]) != num_classes:
            raise ConfigError(f"om.config.num_classes is {om_config['num_classes']} but the dataset has "
                              f"{num_classes} detection classes")
        m = dict(cfg.get("model", {}) or {})
        class_specific = m.pop("class_specific_size", None)
        if class_specific is None:
            class_specific = "class-specific-size" in getattr(om.module, "MIXINS", ())
        offset_head = m.pop("offset_head", None)
        if offset_head is None:  # as published --not_reg_offset: no head that gets no gradient (DDP refuses those)
            offset_head = "no-offset" not in getattr(om.module, "MIXINS", ())
        return CenterNet(num_classes, class_specific_size=bool(class_specific), offset_head=bool(offset_head), **m)

    def load_weights(self, network, path):
        """A checkpoint's network weights; for a no-offset network the offset head of a checkpoint trained with
        one is skipped with a warning (the published code loads across --not_reg_offset the same way)."""
        if ckpt.load_network(network, path, skippable=("offset_head.",)):
            warnings.warn(f"{path}: the checkpoint's offset head is not used by this variant (no-offset)",
                          stacklevel=2)

    def evaluator(self, cfg, val_ds, out_dir: Path):
        from runtime.detection_eval import BoxAP
        from train.visualize import save_detections

        e = dict(cfg.get("eval", {}) or {})
        n_vis = int(e.get("visualize", 4))
        source = getattr(val_ds, "dataset", val_ds)  # a torch Subset (eval.limit of some callers) holds the dataset
        class_names = (tuple(getattr(source, "class_names", ()))
                       or tuple(f"class {c}" for c in range(val_ds.num_classes)))
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
            for batch in bar(loader, "eval (box AP)", "batch"):
                if limit is not None and ap.images >= int(limit):
                    break
                gt = batch["gt"]
                det = model.predict(to_device(batch, device))  # oracle variants read the batch's truth inputs
                for i in range(min(len(gt), max(0, n_vis - ap.images))):
                    save_detections(out_dir / "visuals", f"val_{ap.images + i:03d}", batch["image"][i],
                                    det[names["boxes"]][i], det[names["scores"]][i], det[names["classes"]][i],
                                    gt[i]["boxes"], gt[i]["classes"], class_names)
                ap.update(det[names["boxes"]], det[names["scores"]], det[names["classes"]],
                          [g["boxes"] for g in gt], [g["classes"] for g in gt], [g["iscrowd"] for g in gt],
                          [g["area"] for g in gt], image_sizes=[g["size"] for g in gt])
            seconds = time.perf_counter() - t
            r = ap.compute()
            model.train(was_training)
            return {**{k: 100.0 * v for k, v in r.items()}, "images": ap.images, "eval_seconds": seconds}

        return evaluate

    def summary(self, e):
        return f"AP {e['ap']:.1f}  AP50 {e.get('ap50', float('nan')):.1f}  AP75 {e.get('ap75', float('nan')):.1f}  " \
               f"({e['images']} val images)"

    def deploy_spec(self, cfg, om_config):
        from train.model import IMAGENET_MEAN, IMAGENET_STD

        return DeploySpec(tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), 32, 0,
                          ("boxes_pred", "scores_pred", "classes_pred"),
                          {"num_classes": int(om_config.get("num_classes", 0)), "boxes": "x1, y1, x2, y2 in pixels"})
