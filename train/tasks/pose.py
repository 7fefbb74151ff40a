"""The pose task: CenterNet multi_pose (specs/pose.yaml) on COCO person keypoints or the synthetic stick figures.

What it takes to add a task (docs/new-task.md), this one as the example: a network head whose outputs are
the OM's prediction inputs by name (:class:`PoseNet`), a dataset adapter whose batches hold its truth inputs
(``boxes``, ``classes``, ``keypoints``: train/data/keypoints.py), an evaluator (OKS keypoint AP through
pycocotools' ``COCOeval(iouType="keypoints")``), a visualiser (skeletons) and the deployable description.
"""
from __future__ import annotations

import contextlib
import functools
import io
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from runtime.config import ConfigError
from runtime.model import OMModel
from runtime.progress import bar
from runtime.trainer import to_device

from .base import DeploySpec, Task, data_root, ensure_generated
from .detection import collate_with_grid

__all__ = ["PoseTask", "PoseNet", "KeypointAP", "draw_poses"]


class PoseNet(nn.Module):
    """The CenterNet trunk (train/model/centernet.py) with the multi_pose heads: ``heatmap`` [N, 1, h, w], ``size``,
    ``offset``, ``joint_offset`` [N, 2J, h, w], ``joint_heatmap`` [N, J, h, w], ``joint_sub_offset`` [N, 2, h, w].
    Without ``joint_heatmap`` (published --not_hm_hp) there is neither that head nor the sub-offset head; without
    ``joint_sub_offset`` (--not_reg_hp_offset) no sub-offset head: no parameter without gradient (DDP)."""

    def __init__(self, num_joints: int = 17, *, joint_heatmap: bool = True, joint_sub_offset: bool = True,
                 **trunk: Any) -> None:
        super().__init__()
        from train.model.centernet import HEATMAP_BIAS, CenterNet

        self.centers = CenterNet(1, **trunk)
        neck = int(trunk.get("neck_channels", 64))
        mid = int(trunk.get("head_channels", 64))
        self.has_joint_heatmap = bool(joint_heatmap)
        self.has_joint_sub_offset = bool(joint_heatmap and joint_sub_offset)
        self.joint_offset_head = CenterNet._head(neck, mid, 2 * num_joints)
        self.joint_heatmap_head = CenterNet._head(neck, mid, num_joints) if self.has_joint_heatmap else nn.Sequential()
        self.joint_sub_offset_head = CenterNet._head(neck, mid, 2) if self.has_joint_sub_offset else nn.Sequential()
        if self.has_joint_heatmap:
            nn.init.constant_(self.joint_heatmap_head[-1].bias, HEATMAP_BIAS)
        for head in [self.joint_offset_head] + ([self.joint_sub_offset_head] if self.has_joint_sub_offset else []):
            nn.init.zeros_(head[-1].bias)

    def forward(self, image: Tensor) -> Dict[str, Tensor]:
        c = self.centers
        f = c.backbone(c.normalize(image))
        x = c.up2(c.up3(c.up4(f["res5"], f["res4"]), f["res3"]), f["res2"])
        out = {"heatmap": c.heatmap_head(x), "size": c.size_head(x), "offset": c.offset_head(x),
               "joint_offset": self.joint_offset_head(x)}
        if self.has_joint_heatmap:
            out["joint_heatmap"] = self.joint_heatmap_head(x)
        if self.has_joint_sub_offset:
            out["joint_sub_offset"] = self.joint_sub_offset_head(x)
        return out


class KeypointAP:
    """OKS keypoint AP of padded predictions against per-image COCO annotations, through pycocotools' COCOeval
    (iouType "keypoints": COCO's 17 sigmas, 20 detections per image, crowd ignored, people without labelled
    joints ignored). Detections with score <= ``min_score`` are dropped."""

    STATS = ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar", "ar50", "ar75", "ar_medium", "ar_large")

    def __init__(self, min_score: float = 0.0) -> None:
        self.min_score = float(min_score)
        self._images: List[Dict[str, Any]] = []
        self._gt: List[Dict[str, Any]] = []
        self._dt: List[Dict[str, Any]] = []

    @property
    def images(self) -> int:
        return len(self._images)

    def update(self, keypoints: Tensor, scores: Tensor, gts: List[Mapping[str, Any]]) -> None:
        """keypoints [N, K, J, 2] (x, y) pixels, scores [N, K]; gts: per image boxes [M, 4], keypoints [M, J, 3],
        iscrowd [M], area [M], size (h, w)."""
        kps, sc = keypoints.detach().float().cpu().numpy(), scores.detach().float().cpu().numpy()
        for i, g in enumerate(gts):
            image_id = len(self._images) + 1
            h, w = g["size"]
            self._images.append({"id": image_id, "height": int(h), "width": int(w)})
            for b, k, c, a in zip(np.asarray(g["boxes"]), np.asarray(g["keypoints"]), np.asarray(g["iscrowd"]),
                                  np.asarray(g["area"])):
                self._gt.append({"id": len(self._gt) + 1, "image_id": image_id, "category_id": 1, "iscrowd": int(c),
                                 "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                 "area": float(a), "keypoints": [float(v) for v in k.reshape(-1)],
                                 "num_keypoints": int((k[:, 2] > 0).sum())})
            for k in np.nonzero(sc[i] > self.min_score)[0]:
                joints = np.concatenate([kps[i, k], np.ones((kps.shape[2], 1), np.float32)], 1)
                self._dt.append({"image_id": image_id, "category_id": 1, "score": float(sc[i, k]),
                                 "keypoints": [float(v) for v in joints.reshape(-1)]})

    def compute(self) -> Dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        nan = float("nan")
        if not any(a["iscrowd"] == 0 and a["num_keypoints"] > 0 for a in self._gt):
            return {k: nan for k in self.STATS}
        if not self._dt:
            return {k: 0.0 for k in self.STATS}
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": [dict(im) for im in self._images], "annotations": [dict(a) for a in self._gt],
                          "categories": [{"id": 1, "name": "person"}]}
            gt.createIndex()
            dt = gt.loadRes([dict(d) for d in self._dt])
            ev = COCOeval(gt, dt, iouType="keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {k: (nan if v < 0 else float(v)) for k, v in zip(self.STATS, ev.stats)}


def draw_poses(image: Tensor, keypoints: np.ndarray, scores: np.ndarray, *, min_score: float = 0.3,
               truth: np.ndarray = None, scale: int = 3) -> np.ndarray:
    """[H * scale, 2 W * scale, 3] RGB: predicted skeletons (score > min_score, colour by score rank) beside the
    ground truth (visible joints filled, hidden ones open)."""
    import cv2

    from train.data.keypoints import COCO_SKELETON

    base = np.ascontiguousarray(image.detach().cpu().numpy().transpose(1, 2, 0))
    base = cv2.resize(base, (base.shape[1] * scale, base.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    panels = []
    for people, is_truth in ((keypoints, False), (truth, True)):
        canvas = (base * 0.6).astype(np.uint8).copy()
        if people is not None:
            for p, joints in enumerate(people):
                if not is_truth and scores[p] <= min_score:
                    continue
                colour = tuple(int(v) for v in cv2.applyColorMap(np.uint8([[37 * p % 255]]), cv2.COLORMAP_HSV)[0, 0])
                ok = joints[:, 2] > 0 if is_truth else np.ones(len(joints), bool)
                pts = [(int(round(x * scale)), int(round(y * scale))) for x, y in joints[:, :2]]
                for a, b in COCO_SKELETON:
                    if ok[a] and ok[b]:
                        cv2.line(canvas, pts[a], pts[b], colour, 2, cv2.LINE_AA)
                for j in np.nonzero(ok)[0]:
                    filled = -1 if (not is_truth or joints[j, 2] == 2) else 1
                    cv2.circle(canvas, pts[j], 3, (255, 255, 255), filled, cv2.LINE_AA)
        cv2.putText(canvas, "truth" if is_truth else "prediction", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(canvas)
    return np.concatenate(panels, 1)


def ensure_stick_figures(data: Mapping[str, Any]) -> Path:
    from train.data.stick_figures import write_dataset

    return ensure_generated(data, write_dataset, {"train": 800, "val": 100, "size": 128, "seed": 0},
                            "synthetic stick figures")


class PoseTask(Task):
    name = "pose"
    spec = "specs/pose.yaml"
    default_out = "runs/pose"
    metric, metric_label = "ap", "keypoint AP"
    datasets = ("synthetic", "coco")
    data_keys = ("crop_size", "scale_range", "flip_prob", "max_objects", "skip_empty")
    model_keys = ("backbone", "backbone_width", "neck_channels", "head_channels")
    eval_keys = ("min_score", "visualize")

    def synthetic(self, cfg):
        return ensure_stick_figures(cfg["data"]) if cfg["data"].get("dataset", "synthetic") == "synthetic" else None

    def dataset(self, cfg, split, *, train):
        from train.data.keypoints import CocoKeypoints, PoseAugment

        data = cfg["data"]
        kind = data.get("dataset", "synthetic")
        root = ensure_stick_figures(data) if kind == "synthetic" else data_root(data["root"])
        crop = data.get("crop_size")
        transform = PoseAugment(tuple(crop) if crop else None, tuple(data.get("scale_range", (0.6, 1.4))),
                                float(data.get("flip_prob", 0.5))) if train else None
        return CocoKeypoints.from_root(root, split, transform=transform, seed=int(cfg.get("seed", 0)),
                                       skip_empty=train and bool(data.get("skip_empty", True)))

    def collate(self, cfg, dataset, *, train):
        from train.data.keypoints import collate_pose

        m = cfg["data"].get("max_objects")
        collate = functools.partial(collate_pose, max_objects=None if m is None else int(m))
        if not train or cfg["om"].get("targets", self.default_targets) != "loader":
            return collate
        stride = int(dict(cfg["om"].get("config", {}) or {}).get("output_stride", 4))
        return functools.partial(collate_with_grid, collate=collate, key="grid", stride=stride)

    def network(self, cfg, om, om_config, dataset):
        mixins = getattr(om.module, "MIXINS", ())
        joints = int({**om.defaults, **om_config}.get("num_joints", 17))
        if joints != 17:
            raise ConfigError(f"om.config.num_joints is {joints}; the COCO datasets and COCOeval have 17 joints")
        m = dict(cfg.get("model", {}) or {})
        return PoseNet(joints, joint_heatmap="no-joint-heatmap" not in mixins,
                       joint_sub_offset="no-joint-sub-offset" not in mixins, **m)

    def evaluator(self, cfg, val_ds, out_dir: Path):
        import cv2

        e = dict(cfg.get("eval", {}) or {})
        batch_size = int(e.get("batch_size", 16))
        limit = e.get("limit")
        n_vis = int(e.get("visualize", 4))
        min_score = float(e.get("min_score", 0.0))
        collate = self.collate(cfg, val_ds, train=False)

        def evaluate(model: OMModel, step: int) -> Dict[str, Any]:
            device = next(model.network.parameters()).device
            was_training = model.training
            model.eval()
            ap = KeypointAP(min_score)
            loader = torch.utils.data.DataLoader(val_ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
            t = time.perf_counter()
            for batch in bar(loader, "eval (keypoint AP)", "batch"):
                if limit is not None and ap.images >= int(limit):
                    break
                out = model.predict(to_device(batch, device))  # oracle variants read the batch's truth inputs
                gts = [val_ds[int(i)] for i in batch["index"]]
                gts = [{**{k: g[k].numpy() for k in ("boxes", "keypoints", "iscrowd", "area")}, "size": s}
                       for g, s in zip(gts, batch["size"])]
                for i in range(len(gts)):
                    if ap.images + i < n_vis:
                        panel = draw_poses(batch["image"][i], out["keypoints_pred"][i].cpu().numpy(),
                                           out["scores_pred"][i].cpu().numpy(), truth=gts[i]["keypoints"])
                        (out_dir / "visuals").mkdir(parents=True, exist_ok=True)
                        cv2.imwrite(str(out_dir / "visuals" / f"val_{ap.images + i:03d}_pose.png"), panel[:, :, ::-1])
                ap.update(out["keypoints_pred"], out["scores_pred"], gts)
            seconds = time.perf_counter() - t
            r = ap.compute()
            model.train(was_training)
            return {**{k: 100.0 * v for k, v in r.items()}, "images": ap.images, "eval_seconds": seconds}

        return evaluate

    def summary(self, e):
        return (f"keypoint AP {e['ap']:.1f}  AP50 {e['ap50']:.1f}  AP75 {e['ap75']:.1f}  AR {e['ar']:.1f}  "
                f"({e['images']} val images)")

    def deploy_spec(self, cfg, om_config):
        from train.data.keypoints import COCO_JOINTS, COCO_SKELETON, FLIP_PAIRS
        from train.model import IMAGENET_MEAN, IMAGENET_STD

        return DeploySpec(tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), 32, 0,
                          ("boxes_pred", "scores_pred", "keypoints_pred"),
                          {"classes": ["person"], "joint_names": list(COCO_JOINTS),
                           "skeleton": [list(p) for p in COCO_SKELETON], "flip_pairs": [list(p) for p in FLIP_PAIRS],
                           "keypoints": "(x, y) in input pixels", "boxes": "x1, y1, x2, y2 in input pixels",
                           "top_k": int(om_config.get("top_k", 100))})
