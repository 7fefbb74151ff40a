"""Synthetic people for the pose task: articulated stick figures written as a COCO person-keypoints dataset.

    python -m train.data.stick_figures --out data/stick --train 800 --val 100 --size 128

Each image holds 1-4 figures on a textured background: the COCO skeleton (17 joints) with random limb angles,
scales and colours, drawn as thick limbs with a head disc. Occluders (rectangles drawn over some figures) make
the joints under them hidden (v = 1); figures cut by the border lose the joints outside the image (v = 0,
written (0, 0, 0) as COCO does). ``bbox`` is the box of the drawn figure inside the image, ``area`` its pixel
count (COCO's segmentation area, the OKS scale). Two rules keep the oracle study exact (docs/pose.md):
people's centers fall into distinct output cells (stride 4), and a joint that would share an output cell with
an already labelled joint of the image is left unlabelled (the published head has one joint sub-offset map for
all joints, so one cell holds one offset).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from runtime.progress import bar
from train.data.keypoints import COCO_JOINTS, COCO_SKELETON

__all__ = ["render", "write_split", "write_dataset", "STRIDE"]

STRIDE = 4  # output stride whose cells the labelled joints and the centers keep distinct


def _rot(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _figure(rng: np.random.Generator, cx: float, cy: float, height: float) -> np.ndarray:
    """[17, 2] joint (x, y) of a figure standing at (cx, cy) (its pelvis), ``height`` pixels tall; the figure faces
    the camera, so its left joints lie at larger x."""
    tilt = rng.normal(0.0, 0.15)
    up = _rot(np.array([0.0, -1.0]), tilt)
    side = _rot(np.array([1.0, 0.0]), tilt)
    pelvis = np.array([cx, cy])
    neck = pelvis + up * 0.36 * height
    head = neck + up * 0.14 * height
    j = np.zeros((17, 2))
    j[0] = head + side * rng.normal(0, 0.01) * height                      # nose
    j[1], j[2] = head + (side * 0.05 + up * 0.04) * height, head + (-side * 0.05 + up * 0.04) * height   # eyes
    j[3], j[4] = head + side * 0.09 * height, head - side * 0.09 * height  # ears
    j[5], j[6] = neck + side * 0.15 * height, neck - side * 0.15 * height  # shoulders
    j[11], j[12] = pelvis + side * 0.09 * height, pelvis - side * 0.09 * height  # hips
    for shoulder, elbow, wrist, sign in ((5, 7, 9, 1.0), (6, 8, 10, -1.0)):
        upper = rng.uniform(-0.4, 2.6) * sign  # from hanging down to raised
        lower = upper + rng.uniform(-1.4, 1.4)
        j[elbow] = j[shoulder] + _rot(-up, -upper) * 0.17 * height
        j[wrist] = j[elbow] + _rot(-up, -lower) * 0.15 * height
    for hip, knee, ankle, sign in ((11, 13, 15, 1.0), (12, 14, 16, -1.0)):
        thigh = rng.uniform(-0.2, 0.7) * sign
        shin = thigh + rng.uniform(-0.6, 0.3) * sign
        j[knee] = j[hip] + _rot(-up, -thigh) * 0.24 * height
        j[ankle] = j[knee] + _rot(-up, -shin) * 0.24 * height
    return j


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(40, 200, size=3)
    gy, gx = np.mgrid[0:h, 0:w]
    grad = (gy / max(h, 1))[..., None] * rng.uniform(-60, 60, size=3) + (gx / max(w, 1))[..., None] * rng.uniform(-60, 60, size=3)
    noise = rng.normal(0, 12, size=(h, w, 3))
    return np.clip(base + grad + noise, 0, 255).astype(np.uint8)


def render(rng: np.random.Generator, h: int = 128, w: int = 128, max_people: int = 4
           ) -> Tuple[np.ndarray, List[Dict[str, object]]]:
    """One image [h, w, 3] RGB uint8 and its person annotations (bbox, keypoints [17 x 3], area, num_keypoints)."""
    image = _background(rng, h, w)
    taken_cells: set = set()
    centers: set = set()
    people = []
    for _ in range(int(rng.integers(1, max_people + 1))):
        for _attempt in range(20):
            height = rng.uniform(0.35, 0.65) * h
            cx, cy = rng.uniform(0.0, 1.0) * w, rng.uniform(0.4, 0.78) * h  # the pelvis; some figures cross the border
            joints = _figure(rng, cx, cy, height)
            mask = np.zeros((h, w), np.uint8)
            thick = max(2, int(round(height * 0.05)))
            for a, b in COCO_SKELETON:
                if a <= 4 and b <= 4:
                    continue  # the face is the head disc
                cv2.line(mask, tuple(int(round(v)) for v in joints[a]), tuple(int(round(v)) for v in joints[b]), 1, thick)
            head = (joints[3] + joints[4]) / 2
            cv2.circle(mask, tuple(int(round(v)) for v in head), max(2, int(round(height * 0.1))), 1, -1)
            ys, xs = np.nonzero(mask)
            if len(xs) < 20:
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            center = (int((box[1] + box[3]) / 2) // STRIDE, int((box[0] + box[2]) / 2) // STRIDE)
            if center in centers:
                continue
            break
        else:
            continue
        centers.add(center)
        colour = rng.uniform(0, 255, size=3)
        image[mask > 0] = (0.25 * image[mask > 0] + 0.75 * colour).astype(np.uint8)
        people.append({"joints": joints, "mask": mask, "box": box})
    occluded = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(0, 3))):  # occluders over the figures
        oh, ow = int(rng.integers(h // 8, h // 3)), int(rng.integers(w // 8, w // 3))
        y0, x0 = int(rng.integers(0, h - oh)), int(rng.integers(0, w - ow))
        image[y0:y0 + oh, x0:x0 + ow] = rng.uniform(0, 255, size=3).astype(np.uint8)
        occluded[y0:y0 + oh, x0:x0 + ow] = True
    anns = []
    for p in people:
        kps = np.zeros((17, 3), np.float64)
        visible_mask = p["mask"].astype(bool) & ~occluded
        for j, (x, y) in enumerate(p["joints"]):
            x, y = round(float(x), 2), round(float(y), 2)  # as written to the JSON
            if not (0 <= x < w and 0 <= y < h):
                continue  # cut by the border: unlabelled
            cell = (int(y) // STRIDE, int(x) // STRIDE)
            if cell in taken_cells:
                continue
            taken_cells.add(cell)
            kps[j] = (x, y, 1 if occluded[int(y), int(x)] else 2)
        area = int(visible_mask.sum()) or int(p["mask"].sum())
        x1, y1, x2, y2 = p["box"]
        anns.append({"bbox": [x1, y1, x2 - x1, y2 - y1], "keypoints": [float(v) for v in kps.reshape(-1)],
                     "num_keypoints": int((kps[:, 2] > 0).sum()), "area": float(area), "iscrowd": 0})
    return image, anns


CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_JOINTS),
            "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON]}


def write_split(root: Path, split: str, count: int, size: Tuple[int, int], seed: int) -> Path:
    """``root/{split}/NNNNNN.png`` and ``root/annotations/person_keypoints_{split}.json`` (written last, atomically)."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in bar(range(count), f"generating {split}", "image"):
        rng = np.random.default_rng([seed, 0 if split == "train" else 1, i])
        image, anns = render(rng, size[0], size[1])
        name = f"{i:06d}.png"
        cv2.imwrite(str(root / split / name), image[:, :, ::-1])
        images.append({"id": i + 1, "file_name": name, "height": size[0], "width": size[1]})
        for a in anns:
            annotations.append({**a, "id": len(annotations) + 1, "image_id": i + 1, "category_id": 1})
    path = root / "annotations" / f"person_keypoints_{split}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"info": {"description": "omgen synthetic stick figures"}, "images": images,
                               "annotations": annotations, "categories": [CATEGORY]}))
    tmp.replace(path)
    return path


def write_dataset(root: Path | str, train: int, val: int, size: Tuple[int, int] = (128, 128), seed: int = 0) -> Path:
    root = Path(root)
    write_split(root, "train", train, tuple(size), seed)
    write_split(root, "val", val, tuple(size), seed)
    return root


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.data.stick_figures", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--train", type=int, default=800, help="training images")
    p.add_argument("--val", type=int, default=100, help="validation images")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    a = p.parse_args(argv)
    write_dataset(a.out, a.train, a.val, (a.size, a.size), a.seed)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
