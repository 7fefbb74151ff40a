"""Panoptic predictions on disk in the COCO/Cityscapes format, scored by the datasets' own evaluators.

``python -m train eval CONFIG --official`` uses this as a cross-check of our
vectorised PQ (runtime/evaluation.py): predictions are written as the
benchmarks expect them (an RGB PNG per image, id = ``R + 256 G + 256^2 B``, and
one JSON of ``segments_info`` with *dataset* category ids), together with the
ground-truth JSON restricted to the evaluated images, and then scored by

* Cityscapes: ``cityscapesscripts.evaluation.evalPanopticSemanticLabeling``
  (the ``cityscapes`` extra);
* COCO format (COCO, the synthetic shapes): ``panopticapi.evaluation.pq_compute``
  (``pip install --no-deps panopticapi-lite``: its metadata pins numpy<2).

Both evaluators print as they go; their output goes to ``official.log`` in the
eval folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np

from train.data.panoptic import DatasetError, PanopticDataset, id2rgb

EVALUATORS = {"cityscapes": "cityscapesscripts (pip install 'omgen[cityscapes]')",
              "coco": "panopticapi (pip install --no-deps panopticapi-lite)"}


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, default=float)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _bbox(mask: np.ndarray) -> List[int]:
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


class PanopticPredictionWriter:
    """Collects predicted id maps (omgen's convention) of dataset images and writes them in the dataset format.

    Segment ids on disk are ``panoptic id + 1`` (class 0's stuff id is 0, which the format reserves for void);
    void predictions (class ``ignore_label``) are 0.
    """

    def __init__(self, out_dir: Path, dataset: PanopticDataset) -> None:
        self.dataset = dataset
        self.folder = Path(out_dir) / "predictions"
        self.png_dir = self.folder / "panoptic"
        self.png_dir.mkdir(parents=True, exist_ok=True)
        self.annotations: List[Dict[str, Any]] = []
        self.indices: List[int] = []

    def add(self, index: int, pred: np.ndarray) -> None:
        """``pred``: int ``[H, W]`` (cropped to the image) for dataset image ``index``."""
        import cv2

        ds = self.dataset
        record = ds.records[index]
        divisor, ignore, k = ds.label_divisor, ds.ignore_label, ds.num_classes
        classes = pred // divisor
        bad = (classes != ignore) & ((classes < 0) | (classes >= k))
        if bad.any():
            raise ValueError(f"prediction for image {record.image_id!r}: ids {np.unique(pred[bad])[:5].tolist()} "
                             f"outside classes 0..{k - 1} and void ({ignore})")
        ids = np.where(classes == ignore, 0, pred + 1).astype(np.int64)
        segments = []
        for seg_id, area in zip(*np.unique(ids, return_counts=True)):
            if seg_id == 0:
                continue
            train_id = int((seg_id - 1) // divisor)
            segments.append({"id": int(seg_id), "category_id": int(ds.categories.category_ids[train_id]),
                             "iscrowd": 0, "area": int(area), "bbox": _bbox(ids == seg_id)})
        name = f"{index:06d}_{Path(record.label_path).stem}.png"
        rgb = id2rgb(ids)
        if not cv2.imwrite(str(self.png_dir / name), np.ascontiguousarray(rgb[:, :, ::-1])):
            raise DatasetError(f"{self.png_dir / name}: cannot write the prediction PNG")
        self.annotations.append({"image_id": record.image_id, "file_name": name, "segments_info": segments})
        self.indices.append(index)

    def finish(self) -> Dict[str, Path]:
        """Write the prediction JSON and the ground truth of the evaluated images; returns their paths."""
        gt = json.loads(Path(self.dataset.json_path).read_text(encoding="utf-8"))
        evaluated = {self.dataset.records[i].image_id for i in self.indices}
        gt_subset = {"images": [im for im in gt["images"] if im["id"] in evaluated],
                     "annotations": [a for a in gt["annotations"] if a["image_id"] in evaluated],
                     "categories": gt["categories"]}
        pred_json, gt_json = self.folder / "panoptic.json", self.folder / "ground_truth.json"
        _write_json_atomic(gt_json, gt_subset)
        _write_json_atomic(pred_json, {"annotations": self.annotations, "categories": gt["categories"]})
        gt_folder = Path(self.dataset.records[self.indices[0]].label_path).parent if self.indices else self.folder
        return {"pred_json": pred_json, "pred_folder": self.png_dir, "gt_json": gt_json, "gt_folder": gt_folder}


def _run_evaluator(kind: str, files: Mapping[str, Path], log_path: Path) -> Dict[str, Any]:
    if kind not in EVALUATORS:
        raise ValueError(f"--official: no official evaluator for dataset {kind!r} (cityscapes, coco, synthetic)")
    scratch = log_path.with_name(".official-results.json")
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        try:
            if kind == "cityscapes":
                from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import evaluatePanoptic

                result = evaluatePanoptic(str(files["gt_json"]), str(files["gt_folder"]), str(files["pred_json"]),
                                          str(files["pred_folder"]), str(scratch))
            else:
                from panopticapi.evaluation import pq_compute

                result = pq_compute(str(files["gt_json"]), str(files["pred_json"]), str(files["gt_folder"]),
                                    str(files["pred_folder"]))
        except ImportError:
            raise DatasetError(f"--official on {kind} needs {EVALUATORS[kind]}") from None
        except ZeroDivisionError:
            raise DatasetError(f"{files['gt_json']}: the official {kind} evaluator needs at least one thing and one "
                               "stuff class in the evaluated images (it divides by their count)") from None
        except SystemExit:
            raise DatasetError(f"{log_path}: the official {kind} evaluator stopped (see its log)") from None
        finally:
            with contextlib.suppress(OSError):
                scratch.unlink()
    _write_json_atomic(log_path.with_name("official.json"), result)
    return result


def official_panoptic_quality(kind: str, writer: PanopticPredictionWriter, out_dir: Path) -> Dict[str, Any]:
    """Score the written predictions with the dataset's evaluator: PQ/SQ/RQ (0-100) overall, things, stuff,
    and per class in train-id order (the ``per_class_pq`` layout of our own evaluation)."""
    files = writer.finish()
    result = _run_evaluator("coco" if kind == "synthetic" else kind, files, Path(out_dir) / "official.log")
    per_class = {int(k): v for k, v in result["per_class"].items()}
    ids = writer.dataset.categories.category_ids
    out: Dict[str, Any] = {"evaluator": "cityscapesscripts" if kind == "cityscapes" else "panopticapi"}
    for group, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        for metric in ("pq", "sq", "rq"):
            out[metric + suffix] = 100 * float(result[group][metric])
    for metric in ("pq", "sq", "rq"):
        out[f"per_class_{metric}"] = [100 * float(per_class.get(c, {}).get(metric, 0.0)) for c in ids]
    return out


__all__ = ["PanopticPredictionWriter", "official_panoptic_quality", "EVALUATORS"]
