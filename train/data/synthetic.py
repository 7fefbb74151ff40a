"""Synthetic panoptic dataset, written in the exact COCO panoptic format.

Scenes of H x W pixels (default 128 x 128):

* stuff (one segment per class present): ``sky`` (light blue gradient band at
  the top), ``wall`` (grey brick texture band), ``ground`` (brown/green
  speckle, always present at the bottom); the boundaries between bands are
  wavy.
* things: ``ellipse`` (red), ``rectangle`` (green, rotated), ``triangle``
  (violet); per-instance colour jitter, shading and a dark 1-px outline.
  2–8 instances per image, log-uniform sizes from 4 px up to ~45 % of the
  image side (so many are small), drawn in random order so later ones occlude
  earlier ones; a shape may be cut by the image border.
* crowd (probability ``crowd_prob`` per image): a box with a cluster of tiny
  shapes of one thing class, annotated as ONE segment with ``iscrowd: 1``.
* void (probability ``void_prob`` per image): a polygon of random-colour
  clutter drawn on top of everything, left unlabeled (PNG id 0). Also void:
  what remains visible of an instance whose visible area fell below
  ``min_area`` pixels after occlusion (the instance is dropped).

Category ids are deliberately non-contiguous and interleave stuff and things
(sky 1, ellipse 2, wall 5, rectangle 7, ground 9, triangle 12), so the
loaders' mapping to train ids 0..5 (things 1, 3, 5) is exercised.

Every image is drawn from ``numpy.random.default_rng([seed, split, index])``
(split 0 train, 1 val): the same seed gives the same files, and an image does
not depend on how many others are generated. Segment ids in the PNGs are
random unique integers in [1, 2^24), as any COCO panoptic reader must accept.

Layout (COCO's)::

    OUT/train/000000.jpg …              OUT/val/…
    OUT/annotations/panoptic_train.json OUT/annotations/panoptic_val.json
    OUT/annotations/panoptic_train/000000.png …

CLI: ``python -m train.data.synthetic --out DIR --train 400 --val 50 --size 128 --seed 0``
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.progress import bar
from train.data.panoptic import id2rgb

CATEGORIES: list[dict[str, Any]] = [
    {"id": 1, "name": "sky", "supercategory": "stuff", "isthing": 0, "color": [135, 190, 235]},
    {"id": 2, "name": "ellipse", "supercategory": "shape", "isthing": 1, "color": [210, 40, 40]},
    {"id": 5, "name": "wall", "supercategory": "stuff", "isthing": 0, "color": [128, 128, 128]},
    {"id": 7, "name": "rectangle", "supercategory": "shape", "isthing": 1, "color": [40, 170, 60]},
    {"id": 9, "name": "ground", "supercategory": "stuff", "isthing": 0, "color": [140, 100, 55]},
    {"id": 12, "name": "triangle", "supercategory": "shape", "isthing": 1, "color": [150, 60, 200]},
]
CAT_ID = {c["name"]: c["id"] for c in CATEGORIES}
THING_NAMES = ("ellipse", "rectangle", "triangle")
SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SyntheticConfig:
    height: int = 128
    width: int = 128
    min_instances: int = 2
    max_instances: int = 8
    crowd_prob: float = 0.1
    void_prob: float = 0.15
    min_area: int = 8
    noise_sigma: float = 6.0


@dataclass
class Scene:
    """One generated image: ``image`` [H, W, 3] uint8 RGB, ``ids`` [H, W]
    int64 segment ids (0 = void) and the COCO ``segments_info`` list."""

    image: np.ndarray
    ids: np.ndarray
    segments: list[dict[str, Any]]


# ---------------------------------------------------------------------------
# textures


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = np.array([120, 180, 235], np.float32) + rng.uniform(-12, 12, 3)
    ramp = np.linspace(-20, 25, h, dtype=np.float32)[:, None, None]  # lighter towards the horizon
    img = np.broadcast_to(base + ramp * np.array([1.0, 0.7, 0.2], np.float32), (h, w, 3)).copy()
    return img + rng.normal(0, 3, (h, w, 3)).astype(np.float32)


def _wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    g = rng.uniform(110, 150)
    base = np.array([g + rng.uniform(-6, 6), g, g + rng.uniform(-6, 6)], np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    bh, bw = int(rng.integers(6, 10)), int(rng.integers(12, 20))
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    row = y // bh
    mortar = (y % bh == 0) | ((x + (row % 2) * (bw // 2)) % bw == 0)
    img[mortar] -= 45
    return img + rng.normal(0, 5, (h, w, 3)).astype(np.float32)


def _ground(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = np.array([140, 100, 55], np.float32) + rng.uniform(-10, 10, 3)
    low = cv2.resize(rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32), (w, h))
    img = base + low[:, :, None] * np.array([14, 18, 6], np.float32)
    return img + rng.normal(0, 12, (h, w, 3)).astype(np.float32)


# ---------------------------------------------------------------------------
# shapes


def _shape_mask(rng: np.random.Generator, kind: str, h: int, w: int, size: float, cy: float, cx: float) -> np.ndarray:
    """uint8 mask of one shape of ``kind`` with extent ~``size`` centred at (cy, cx)."""
    mask = np.zeros((h, w), np.uint8)
    angle = rng.uniform(0, 180)
    aspect = rng.uniform(0.45, 1.0)
    if kind == "ellipse":
        axes = (max(1, round(size / 2)), max(1, round(size / 2 * aspect)))
        cv2.ellipse(mask, (round(cx), round(cy)), axes, angle, 0, 360, 1, -1)
    elif kind == "rectangle":
        pts = cv2.boxPoints(((cx, cy), (size, size * aspect), angle))
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    elif kind == "triangle":
        a0 = rng.uniform(0, 2 * math.pi)
        angles = a0 + np.array([0.0, rng.uniform(1.6, 2.5), 0.0])
        angles[2] = angles[1] + rng.uniform(1.6, 2 * math.pi - (angles[1] - a0) - 1.0)
        r = size / 2
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return mask.astype(bool)


def _paint_thing(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, kind: str) -> None:
    color = np.array(CATEGORIES[[c["name"] for c in CATEGORIES].index(kind)]["color"], np.float32)
    color = color + rng.uniform(-20, 20, 3)
    ys, xs = np.nonzero(mask)
    g = rng.normal(0, 1, 2)
    shade = (ys - ys.mean()) * g[0] + (xs - xs.mean()) * g[1]
    shade = 18 * shade / (np.abs(shade).max() + 1e-6)
    img[ys, xs] = color + shade[:, None]
    edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    img[edge] *= 0.6


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def render(rng: np.random.Generator, cfg: SyntheticConfig = SyntheticConfig()) -> Scene:
    """Draw one scene from ``rng``."""
    h, w = cfg.height, cfg.width
    used: set[int] = {0}

    def new_id() -> int:
        while True:
            sid = int(rng.integers(1, 1 << 24))
            if sid not in used:
                used.add(sid)
                return sid

    img = np.zeros((h, w, 3), np.float32)
    ids = np.zeros((h, w), np.int64)
    meta: dict[int, tuple[int, bool]] = {}  # segment id -> (category id, iscrowd)
    order: list[int] = []

    # stuff bands with wavy boundaries
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]

    def boundary(frac: float) -> np.ndarray:
        amp = rng.uniform(0, 0.06 * h)
        period = rng.uniform(0.5, 2.0) * w
        return frac * h + amp * np.sin(2 * math.pi * x / period + rng.uniform(0, 2 * math.pi))

    b1 = boundary(rng.uniform(0.15, 0.45)) if rng.random() < 0.8 else np.full((1, w), -1.0)
    b2 = boundary(rng.uniform(0.45, 0.75)) if rng.random() < 0.7 else b1
    b2 = np.maximum(b2, b1)
    regions = {"sky": y < b1, "wall": (y >= b1) & (y < b2), "ground": y >= b2}
    textures = {"sky": _sky, "wall": _wall, "ground": _ground}
    for name, m in regions.items():
        if m.any():
            sid = new_id()
            img[m] = textures[name](rng, h, w)[m]
            ids[m] = sid
            meta[sid] = (CAT_ID[name], False)
            order.append(sid)

    layers: list[tuple[str, Any]] = []
    if rng.random() < cfg.crowd_prob:
        layers.append(("crowd", None))
    n = int(rng.integers(cfg.min_instances, cfg.max_instances + 1))
    side = min(h, w)
    for _ in range(n):
        layers.append(("thing", None))
    rng.shuffle(layers)  # crowd at a random depth among the things

    for layer, _ in layers:
        if layer == "crowd":
            kind = THING_NAMES[int(rng.integers(len(THING_NAMES)))]
            bh, bw = int(rng.uniform(0.2, 0.4) * h), int(rng.uniform(0.2, 0.4) * w)
            y0, x0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
            union = np.zeros((h, w), bool)
            for _ in range(int(rng.integers(6, 16))):
                m = _shape_mask(
                    rng, kind, h, w, rng.uniform(3, 7), y0 + rng.uniform(0, bh), x0 + rng.uniform(0, bw)
                )
                if m.any():
                    _paint_thing(rng, img, m, kind)
                    union |= m
            if union.any():
                sid = new_id()
                ids[union] = sid
                meta[sid] = (CAT_ID[kind], True)
                order.append(sid)
        else:
            kind = THING_NAMES[int(rng.integers(len(THING_NAMES)))]
            size = math.exp(rng.uniform(math.log(4), math.log(0.45 * side)))
            m = _shape_mask(rng, kind, h, w, size, rng.uniform(0, h), rng.uniform(0, w))
            if not m.any():
                continue
            _paint_thing(rng, img, m, kind)
            sid = new_id()
            ids[m] = sid
            meta[sid] = (CAT_ID[kind], False)
            order.append(sid)

    if rng.random() < cfg.void_prob:
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.08, 0.2) * side
        ang = np.sort(rng.uniform(0, 2 * math.pi, 7))
        rad = r * rng.uniform(0.5, 1.0, 7)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        m = m.astype(bool)
        img[m] = rng.uniform(0, 255, (int(m.sum()), 3))
        ids[m] = 0

    # drop occluded leftovers below min_area (they become void)
    segments = []
    for sid in order:
        m = ids == sid
        area = int(m.sum())
        if area == 0:
            continue
        cat, crowd = meta[sid]
        if area < cfg.min_area and not crowd and cat in {CAT_ID[t] for t in THING_NAMES}:
            ids[m] = 0
            continue
        segments.append({"id": sid, "category_id": cat, "area": area, "bbox": _bbox(m), "iscrowd": int(crowd)})

    img += rng.normal(0, cfg.noise_sigma, img.shape).astype(np.float32)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return Scene(image=image, ids=ids, segments=segments)


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS[split], index])


def render_indexed(seed: int, split: str, index: int, cfg: SyntheticConfig = SyntheticConfig()) -> Scene:
    """The scene that :func:`write_dataset` writes as image ``index`` of ``split``."""
    return render(scene_rng(seed, split, index), cfg)


def _write(path: Path, arr_rgb: np.ndarray, params: list[int] | None = None) -> None:
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(arr_rgb[:, :, ::-1]), params or [])
    if not ok:  # pragma: no cover
        raise OSError(f"{path}: cannot encode")
    path.write_bytes(buf.tobytes())


def write_split(
    out: Path | str,
    split: str,
    count: int,
    seed: int = 0,
    cfg: SyntheticConfig = SyntheticConfig(),
    image_format: str = "jpg",
) -> Path:
    """Write ``count`` images of ``split``; returns the JSON path."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out = Path(out)
    img_dir = out / split
    pan_dir = out / "annotations" / f"panoptic_{split}"
    img_dir.mkdir(parents=True, exist_ok=True)
    pan_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in bar(range(count), f"generating {split}", "image"):
        scene = render_indexed(seed, split, i, cfg)
        stem = f"{i:06d}"
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
        _write(img_dir / f"{stem}.{image_format}", scene.image, params)
        _write(pan_dir / f"{stem}.png", id2rgb(scene.ids))
        images.append({"id": i, "file_name": f"{stem}.{image_format}", "height": cfg.height, "width": cfg.width})
        annotations.append({"image_id": i, "file_name": f"{stem}.png", "segments_info": scene.segments})
    data = {
        "info": {
            "description": f"omgen synthetic panoptic shapes, split {split}, seed {seed}",
            "version": "1",
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    json_path = out / "annotations" / f"panoptic_{split}.json"
    json_path.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    return json_path


def write_dataset(
    out: Path | str,
    n_train: int = 400,
    n_val: int = 50,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
    image_format: str = "jpg",
    **cfg_kwargs: Any,
) -> None:
    cfg = SyntheticConfig(height=size[0], width=size[1], **cfg_kwargs)
    write_split(out, "train", n_train, seed, cfg, image_format)
    write_split(out, "val", n_val, seed, cfg, image_format)


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 16:
        raise argparse.ArgumentTypeError(f"size must be N or HxW with sides >= 16, got {text!r}")
    return vals[0], vals[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m train.data.synthetic",
        description="Write the synthetic shapes panoptic dataset in COCO panoptic format.",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--train", type=int, default=400, help="number of training images")
    p.add_argument("--val", type=int, default=50, help="number of validation images")
    p.add_argument("--size", type=_parse_size, default=(128, 128), help="N or HxW (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-format", choices=("jpg", "png"), default="jpg")
    p.add_argument("--crowd-prob", type=float, default=SyntheticConfig.crowd_prob)
    p.add_argument("--void-prob", type=float, default=SyntheticConfig.void_prob)
    a = p.parse_args(argv)
    write_dataset(
        a.out, a.train, a.val, a.size, a.seed, a.image_format, crowd_prob=a.crowd_prob, void_prob=a.void_prob
    )
    print(f"wrote {a.train} train + {a.val} val images of {a.size[0]}x{a.size[1]} to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
