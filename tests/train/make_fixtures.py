"""Write the tiny panoptic fixtures under tests/train/fixtures/ (deterministic).

    python tests/train/make_fixtures.py [OUT_DIR]

* ``coco/``: exact COCO panoptic layout and fields (``val2017/*.jpg``,
  ``annotations/panoptic_val2017.json``, ``annotations/panoptic_val2017/*.png``),
  real COCO category ids and colours for person (1), car (3), road (149) and
  sky-other-merged (187); segment ids are colours as panopticapi makes them.
* ``cityscapes/``: exact layout and fields of cityscapesScripts'
  ``createPanopticImgs`` (``leftImg8bit/val/{city}/*_leftImg8bit.png``,
  ``gtFine/cityscapes_panoptic_val.json``, ``gtFine/cityscapes_panoptic_val/*.png``):
  category ids are label ids, thing segments ``labelId * 1000 + k`` (k from 0),
  stuff and crowd ("group") segments ``labelId``, unevaluated pixels 0.

Scenes are lists of rectangles painted in order (later ones occlude earlier
ones). ``EXPECTED`` in tests/train/test_data.py states by hand what the loaders
must return at a few pixels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent

# (segment id, category id, iscrowd, (y0, y1, x0, x1)); id 0 = void
COCO_CATEGORIES = [
    {"supercategory": "person", "color": [220, 20, 60], "isthing": 1, "id": 1, "name": "person"},
    {"supercategory": "vehicle", "color": [0, 0, 142], "isthing": 1, "id": 3, "name": "car"},
    {"supercategory": "ground", "color": [128, 64, 128], "isthing": 0, "id": 149, "name": "road"},
    {"supercategory": "sky", "color": [70, 130, 180], "isthing": 0, "id": 187, "name": "sky-other-merged"},
]


def _cid(r: int, g: int, b: int) -> int:
    return r + 256 * g + 65536 * b


COCO_SCENES = {
    # image id -> (height, width, rectangles)
    139: (
        32,
        48,
        [
            (_cid(70, 130, 180), 187, 0, (0, 10, 0, 48)),  # sky
            (_cid(128, 64, 128), 149, 0, (10, 32, 0, 48)),  # road
            (_cid(220, 20, 60), 1, 0, (12, 28, 4, 12)),  # person A
            (_cid(225, 24, 58), 1, 0, (14, 30, 9, 17)),  # person B, occludes A
            (_cid(0, 0, 142), 3, 0, (18, 28, 24, 40)),  # car
            (_cid(214, 17, 66), 1, 1, (20, 27, 40, 47)),  # crowd of people
            (0, 0, 0, (0, 4, 40, 48)),  # void
        ],
    ),
    285: (
        24,
        40,
        [
            (_cid(128, 64, 128), 149, 0, (0, 24, 0, 40)),  # road
            (_cid(3, 2, 140), 3, 0, (4, 12, 2, 14)),  # car 1
            (_cid(0, 5, 146), 3, 0, (10, 20, 20, 36)),  # car 2
            (_cid(220, 20, 60), 1, 0, (2, 22, 16, 22)),  # person, occludes car 2
        ],
    ),
}

CITYSCAPES_LABELS = [
    # (label id, name, supercategory, isthing, colour) in label id order
    (7, "road", "flat", 0, [128, 64, 128]),
    (8, "sidewalk", "flat", 0, [244, 35, 232]),
    (11, "building", "construction", 0, [70, 70, 70]),
    (12, "wall", "construction", 0, [102, 102, 156]),
    (13, "fence", "construction", 0, [190, 153, 153]),
    (17, "pole", "object", 0, [153, 153, 153]),
    (19, "traffic light", "object", 0, [250, 170, 30]),
    (20, "traffic sign", "object", 0, [220, 220, 0]),
    (21, "vegetation", "nature", 0, [107, 142, 35]),
    (22, "terrain", "nature", 0, [152, 251, 152]),
    (23, "sky", "sky", 0, [70, 130, 180]),
    (24, "person", "human", 1, [220, 20, 60]),
    (25, "rider", "human", 1, [255, 0, 0]),
    (26, "car", "vehicle", 1, [0, 0, 142]),
    (27, "truck", "vehicle", 1, [0, 0, 70]),
    (28, "bus", "vehicle", 1, [0, 60, 100]),
    (31, "train", "vehicle", 1, [0, 80, 100]),
    (32, "motorcycle", "vehicle", 1, [0, 0, 230]),
    (33, "bicycle", "vehicle", 1, [119, 11, 32]),
]

CITYSCAPES_SCENES = {
    "frankfurt_000000_000294": (
        32,
        64,
        [
            (23, 23, 0, (0, 8, 0, 64)),  # sky
            (11, 11, 0, (8, 16, 0, 64)),  # building
            (7, 7, 0, (16, 32, 0, 64)),  # road
            (26000, 26, 0, (18, 28, 4, 20)),  # car
            (26001, 26, 0, (20, 30, 14, 30)),  # car, occludes the first
            (24000, 24, 0, (10, 28, 40, 46)),  # person
            (26, 26, 1, (16, 22, 50, 62)),  # cargroup: crowd
            (0, 0, 0, (28, 32, 32, 64)),  # ego vehicle: not evaluated -> 0
        ],
    ),
    "lindau_000001_000019": (
        24,
        32,
        [
            (21, 21, 0, (0, 10, 0, 32)),  # vegetation
            (8, 8, 0, (10, 24, 0, 32)),  # sidewalk
            (33000, 33, 0, (14, 22, 6, 18)),  # bicycle
            (25000, 25, 0, (6, 18, 8, 14)),  # rider, occludes the bicycle
        ],
    ),
}


def _paint(h: int, w: int, rects, colors: dict[int, list[int]], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.zeros((h, w), np.int64)
    img = np.zeros((h, w, 3), np.float64)
    for sid, cat, _crowd, (y0, y1, x0, x1) in rects:
        ids[y0:y1, x0:x1] = sid
        img[y0:y1, x0:x1] = colors.get(cat, [40, 40, 40])
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), ids


def _segments(ids: np.ndarray, rects) -> list[dict]:
    out = []
    for sid, cat, crowd, _ in rects:
        if sid == 0:
            continue
        m = ids == sid
        ys, xs = np.nonzero(m)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        out.append({"id": sid, "category_id": cat, "iscrowd": crowd, "bbox": bbox, "area": int(m.sum())})
    return out


def _write_rgb(path: Path, rgb: np.ndarray, params=()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[:, :, ::-1]), list(params))
    assert ok
    path.write_bytes(buf.tobytes())


def _id_png(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def write_coco(root: Path) -> None:
    colors = {c["id"]: c["color"] for c in COCO_CATEGORIES}
    images, annotations = [], []
    for k, (iid, (h, w, rects)) in enumerate(COCO_SCENES.items()):
        img, ids = _paint(h, w, rects, colors, seed=k)
        name = f"{iid:012d}"
        _write_rgb(root / "val2017" / f"{name}.jpg", img, (cv2.IMWRITE_JPEG_QUALITY, 90))
        _write_rgb(root / "annotations" / "panoptic_val2017" / f"{name}.png", _id_png(ids))
        images.append(
            {
                "license": 1,
                "file_name": f"{name}.jpg",
                "coco_url": f"http://images.cocodataset.org/val2017/{name}.jpg",
                "height": h,
                "width": w,
                "date_captured": "2013-11-21 01:34:01",
                "flickr_url": "http://example.invalid/",
                "id": iid,
            }
        )
        annotations.append({"segments_info": _segments(ids, rects), "file_name": f"{name}.png", "image_id": iid})
    data = {
        "info": {"description": "omgen test fixture in COCO panoptic format", "version": "1.0", "year": 2026},
        "licenses": [{"url": "http://example.invalid/", "id": 1, "name": "fixture"}],
        "images": images,
        "annotations": annotations,
        "categories": COCO_CATEGORIES,
    }
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(data, indent=1) + "\n")


def write_cityscapes(root: Path) -> None:
    colors = {lid: col for lid, _n, _s, _t, col in CITYSCAPES_LABELS}
    images, annotations = [], []
    for k, (image_id, (h, w, rects)) in enumerate(CITYSCAPES_SCENES.items()):
        img, ids = _paint(h, w, rects, colors, seed=10 + k)
        city = image_id.split("_")[0]
        _write_rgb(root / "leftImg8bit" / "val" / city / f"{image_id}_leftImg8bit.png", img)
        _write_rgb(root / "gtFine" / "cityscapes_panoptic_val" / f"{image_id}_gtFine_panoptic.png", _id_png(ids))
        images.append({"width": w, "height": h, "file_name": f"{image_id}_leftImg8bit.png", "id": image_id})
        annotations.append(
            {"image_id": image_id, "file_name": f"{image_id}_gtFine_panoptic.png", "segments_info": _segments(ids, rects)}
        )
    categories = [
        {"id": lid, "name": n, "color": col, "supercategory": s, "isthing": t} for lid, n, s, t, col in CITYSCAPES_LABELS
    ]
    data = {"images": images, "annotations": annotations, "categories": categories}
    (root / "gtFine" / "cityscapes_panoptic_val.json").write_text(json.dumps(data, sort_keys=True, indent=4) + "\n")


def main(out: Path = HERE / "fixtures") -> None:
    write_coco(Path(out) / "coco")
    write_cityscapes(Path(out) / "cityscapes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "fixtures")
