"""Code shared by the panoptic loaders: COCO-style panoptic JSON + RGB PNGs.

COCO and Cityscapes store panoptic annotations the same way (a JSON with
``images``, ``annotations[*].segments_info`` and ``categories``, plus one PNG
per image whose colour encodes a segment id as ``R + 256 G + 256^2 B``, with
0 for unlabeled pixels); they differ only in where the files live and in how
category ids map to train ids. This module holds everything but those two
things: parsing and validating the JSON into :class:`PanopticRecord` lists,
decoding images and PNGs, converting segment ids into omgen's id maps, the
:class:`PanopticDataset` base and :func:`collate_panoptic`.

omgen's id map (``docs/datasets.md``): ``train_id * label_divisor + instance``
for a thing segment (instance >= 1, counted per thing class per image in
``segments_info`` order), ``train_id * label_divisor`` for stuff and for crowd
thing segments (instance 0 on a thing class marks crowd), and
``ignore_label * label_divisor`` for void (PNG id 0).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np
import torch

IGNORE_LABEL = 255
LABEL_DIVISOR = 1000

#: ``transform(image HxWx3 uint8, panoptic HxW int64, rng) -> (image, panoptic)``
Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]
ImageId = Union[int, str]


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or inconsistent.

    The message is one line and starts with the offending file's path.
    """


def _err(path: Path | str, msg: str) -> DatasetError:
    return DatasetError(f"{path}: {msg}")


# --------------------------------------------------------------------------
# id <-> colour


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` uint8 RGB → int64 segment ids ``R + 256 G + 256^2 B``."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"rgb2id: expected [..., 3], got shape {rgb.shape}")
    c = rgb.astype(np.int64)
    return c[..., 0] + 256 * c[..., 1] + 65536 * c[..., 2]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (``0 <= id < 2^24``) → ``[..., 3]`` uint8 RGB."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise ValueError("id2rgb: segment ids must lie in [0, 2^24)")
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


# --------------------------------------------------------------------------
# categories


@dataclass(frozen=True)
class CategoryMap:
    """Dataset category ids ↔ contiguous train ids ``0..K-1``.

    Train id ``t`` is ``category_ids[t]``: the order is the dataset's
    categories list (stuff and things interleaved as listed) unless a loader
    fixes it (Cityscapes uses the standard 19 train ids).
    """

    category_ids: tuple[int, ...]
    names: tuple[str, ...]
    isthing: tuple[bool, ...]
    colors: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        n = len(self.category_ids)
        if not (len(self.names) == len(self.isthing) == len(self.colors) == n):
            raise ValueError("CategoryMap: fields must have equal lengths")
        if len(set(self.category_ids)) != n:
            raise ValueError(f"CategoryMap: duplicate category ids in {self.category_ids}")

    @classmethod
    def from_categories(cls, categories: Any, source: Path | str) -> CategoryMap:
        """Build from a COCO ``categories`` list, in list order; errors name ``source``."""
        if not isinstance(categories, list) or not categories:
            raise _err(source, "'categories' must be a non-empty list")
        ids, names, things, colors = [], [], [], []
        for k, cat in enumerate(categories):
            if not isinstance(cat, dict) or "id" not in cat:
                raise _err(source, f"categories[{k}] needs an 'id' (and 'isthing', 'name')")
            cid = cat["id"]
            label = f"categories[{k}] (id {cid!r}, {str(cat.get('name', 'no name'))[:40]!r})"
            if not isinstance(cid, int) or isinstance(cid, bool) or cid < 0:
                raise _err(source, f"{label}: id must be a non-negative integer")
            if cid in ids:
                raise _err(source, f"{label}: category id {cid} appears twice in 'categories'")
            if "isthing" not in cat:
                raise _err(source, f"{label} has no 'isthing' (1 for a thing class with instances, 0 for stuff)")
            if cat["isthing"] not in (0, 1):  # True/False compare equal to 1/0
                raise _err(source, f"{label}: 'isthing' is {cat['isthing']!r}, expected 0 or 1")
            ids.append(cid)
            names.append(str(cat.get("name", cid)))
            things.append(bool(cat["isthing"]))
            color = cat.get("color", (0, 0, 0))
            try:
                colors.append(tuple(int(c) for c in color[:3]))
            except (TypeError, ValueError):
                raise _err(source, f"{label}: 'color' {color!r} is not [r, g, b]") from None
        return cls(tuple(ids), tuple(names), tuple(things), tuple(colors))  # type: ignore[arg-type]

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    @property
    def category_to_train_id(self) -> dict[int, int]:
        return {cid: t for t, cid in enumerate(self.category_ids)}

    @property
    def thing_train_ids(self) -> tuple[int, ...]:
        return tuple(t for t, th in enumerate(self.isthing) if th)

    @property
    def stuff_train_ids(self) -> tuple[int, ...]:
        return tuple(t for t, th in enumerate(self.isthing) if not th)


# --------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class Segment:
    """One entry of ``segments_info``."""

    id: int
    category_id: int
    iscrowd: bool
    area: int
    bbox: tuple[int, int, int, int]  # x, y, w, h (COCO order)


@dataclass(frozen=True)
class PanopticRecord:
    """One annotated image: where its files are and its segments."""

    image_id: ImageId
    image_path: Path
    label_path: Path
    height: int | None
    width: int | None
    segments: tuple[Segment, ...]


def read_json(path: Path | str) -> dict:
    """Load a panoptic JSON; missing file or malformed JSON → :class:`DatasetError`."""
    path = Path(path)
    if not path.is_file():
        raise _err(path, "panoptic JSON not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise _err(path, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _err(path, f"cannot read JSON: {e}") from None
    if not isinstance(data, dict):
        raise _err(path, "panoptic JSON must hold an object with 'images', 'annotations', 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _err(path, f"missing or non-list key '{key}'")
    return data


def build_records(
    data: Mapping[str, Any],
    json_path: Path | str,
    categories: CategoryMap,
    image_path: Callable[[Mapping[str, Any]], Path],
    label_dir: Path | str,
) -> list[PanopticRecord]:
    """Validate a loaded panoptic JSON and pair every annotation with its files.

    ``image_path(image_entry)`` gives the image file of an ``images`` entry
    (where the formats differ); the label PNG is ``label_dir / file_name``.
    Records follow the order of ``images``; images without an annotation are
    skipped.
    """
    label_dir = Path(label_dir)
    known = categories.category_to_train_id
    images: dict[ImageId, Mapping[str, Any]] = {}
    order: list[ImageId] = []
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise _err(json_path, f"images[{k}] needs 'id' and 'file_name'")
        if im["id"] in images:
            raise _err(json_path, f"image id {im['id']!r} appears twice in 'images'")
        images[im["id"]] = im
        order.append(im["id"])

    anns: dict[ImageId, tuple[str, tuple[Segment, ...]]] = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "file_name", "segments_info"} <= ann.keys():
            raise _err(json_path, f"annotations[{k}] needs 'image_id', 'file_name' and 'segments_info'")
        iid = ann["image_id"]
        if iid not in images:
            raise _err(json_path, f"annotations[{k}] refers to unknown image_id {iid!r}")
        if iid in anns:
            raise _err(json_path, f"image_id {iid!r} has two annotations")
        segs = []
        seen: set[int] = set()
        for j, s in enumerate(ann["segments_info"]):
            where = f"annotation of image {iid!r}, segments_info[{j}]"
            if not isinstance(s, dict) or "id" not in s or "category_id" not in s:
                raise _err(json_path, f"{where} needs 'id' and 'category_id'")
            sid, cid = s["id"], s["category_id"]
            if not isinstance(sid, int) or not 0 < sid < 1 << 24:
                raise _err(json_path, f"{where}: segment id {sid!r} must be an integer in [1, 2^24) (0 is void)")
            if sid in seen:
                raise _err(json_path, f"{where}: segment id {sid} appears twice")
            if cid not in known:
                listed = sorted(known)
                raise _err(json_path, f"{where}: category_id {cid!r} is not in 'categories' ({len(listed)} listed, "
                                      f"ids {listed[0]}..{listed[-1]}); add it or fix the segment")
            seen.add(sid)
            bbox = s.get("bbox", (0, 0, 0, 0))
            segs.append(
                Segment(
                    id=sid,
                    category_id=cid,
                    iscrowd=bool(s.get("iscrowd", 0)),
                    area=int(s.get("area", 0)),
                    bbox=tuple(int(v) for v in bbox),  # type: ignore[arg-type]
                )
            )
        anns[iid] = (str(ann["file_name"]), tuple(segs))

    records = []
    for iid in order:
        if iid not in anns:
            continue
        im = images[iid]
        label_name, segs = anns[iid]
        records.append(
            PanopticRecord(
                image_id=iid,
                image_path=Path(image_path(im)),
                label_path=label_dir / label_name,
                height=im.get("height"),
                width=im.get("width"),
                segments=segs,
            )
        )
    return records


# --------------------------------------------------------------------------
# decoding


def _read_bytes(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise _err(path, f"{what} not found")
    try:
        return np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise _err(path, f"cannot read {what}: {e}") from None


def read_image(path: Path | str) -> np.ndarray:
    """An image file → ``[H, W, 3]`` uint8 RGB (grayscale is replicated)."""
    path = Path(path)
    buf = _read_bytes(path, "image file")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise _err(path, "cannot decode image (corrupt or unsupported format)")
    return np.ascontiguousarray(img[:, :, ::-1])


def read_panoptic_png(path: Path | str) -> np.ndarray:
    """A panoptic PNG → ``[H, W]`` int64 segment ids (``R + 256 G + 256^2 B``)."""
    path = Path(path)
    buf = _read_bytes(path, "panoptic PNG")
    png = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if png is None:
        raise _err(path, "cannot decode panoptic PNG (corrupt or not an image)")
    if png.dtype != np.uint8 or png.ndim != 3 or png.shape[2] not in (3, 4):
        raise _err(path, f"panoptic PNG must be 8-bit RGB, got {png.dtype} with shape {png.shape}")
    bgr = png[:, :, :3]
    return rgb2id(bgr[:, :, ::-1])


def segment_ids_to_panoptic(
    ids: np.ndarray,
    record: PanopticRecord,
    categories: CategoryMap,
    label_divisor: int = LABEL_DIVISOR,
    ignore_label: int = IGNORE_LABEL,
) -> np.ndarray:
    """PNG segment ids ``[H, W]`` → omgen panoptic ids ``[H, W]`` int64.

    Thing instances are numbered 1, 2, … per thing class in ``segments_info``
    order (crowd segments are skipped and get instance 0). A PNG id that is
    neither 0 nor listed in ``segments_info`` is an error naming the PNG.
    """
    to_train = categories.category_to_train_id
    ours: dict[int, int] = {}
    counts: dict[int, int] = {}
    for s in record.segments:
        t = to_train[s.category_id]
        if categories.isthing[t] and not s.iscrowd:
            counts[t] = counts.get(t, 0) + 1
            if counts[t] >= label_divisor:
                raise _err(
                    record.label_path,
                    f"more than {label_divisor - 1} instances of class {categories.names[t]!r}; raise label_divisor",
                )
            ours[s.id] = t * label_divisor + counts[t]
        else:
            ours[s.id] = t * label_divisor
    uniq, inv = np.unique(ids, return_inverse=True)
    lut = np.empty(len(uniq), dtype=np.int64)
    for k, u in enumerate(uniq.tolist()):
        if u == 0:
            lut[k] = ignore_label * label_divisor
        elif u in ours:
            lut[k] = ours[u]
        else:
            rgb = (u & 255, (u >> 8) & 255, (u >> 16) & 255)
            raise _err(
                record.label_path,
                f"segment id {u} (RGB {rgb}) is in the PNG but not in segments_info of image {record.image_id!r}",
            )
    return lut[inv.reshape(ids.shape)]


# --------------------------------------------------------------------------
# dataset


class PanopticDataset(torch.utils.data.Dataset):
    """Panoptic samples in omgen's convention, from a list of records.

    ``dataset[i]`` is a dict: ``image`` uint8 ``[3, H, W]``, ``panoptic``
    int64 ``[1, H, W]``, ``image_id`` and ``index``. ``transform`` (e.g.
    :class:`train.data.augment.PanopticAugment`) is called on the numpy arrays
    with a generator seeded by ``(seed, epoch, index)``, so a sample's
    augmentation depends neither on worker count nor on load order; call
    :meth:`set_epoch` to draw new augmentations each epoch.
    """

    def __init__(
        self,
        records: Sequence[PanopticRecord],
        categories: CategoryMap,
        *,
        label_divisor: int = LABEL_DIVISOR,
        ignore_label: int = IGNORE_LABEL,
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        if categories.num_classes > ignore_label:
            raise ValueError(f"{categories.num_classes} classes collide with ignore_label {ignore_label}")
        if ignore_label < 0 or label_divisor < 2:
            raise ValueError("ignore_label must be >= 0 and label_divisor >= 2")
        self.records = list(records)
        self.categories = categories
        self.label_divisor = label_divisor
        self.ignore_label = ignore_label
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    # mapping -----------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.categories.num_classes

    @property
    def thing_train_ids(self) -> tuple[int, ...]:
        return self.categories.thing_train_ids

    @property
    def category_to_train_id(self) -> dict[int, int]:
        return self.categories.category_to_train_id

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.categories.names

    @property
    def void_id(self) -> int:
        """The panoptic id of void pixels: ``ignore_label * label_divisor``."""
        return self.ignore_label * self.label_divisor

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    # loading -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented ``(image [H, W, 3] uint8 RGB, panoptic [H, W] int64)``."""
        rec = self.records[index]
        image = read_image(rec.image_path)
        ids = read_panoptic_png(rec.label_path)
        if ids.shape != image.shape[:2]:
            raise _err(
                rec.label_path,
                f"panoptic PNG is {ids.shape[0]}x{ids.shape[1]} but image {rec.image_path.name} is "
                f"{image.shape[0]}x{image.shape[1]}",
            )
        if rec.height is not None and rec.width is not None and (rec.height, rec.width) != image.shape[:2]:
            raise _err(
                rec.image_path,
                f"image is {image.shape[0]}x{image.shape[1]} but the JSON says {rec.height}x{rec.width}",
            )
        pan = segment_ids_to_panoptic(ids, rec, self.categories, self.label_divisor, self.ignore_label)
        return image, pan

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.records):
            raise IndexError(index)
        image, pan = self.load(index)
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, pan = self.transform(image, pan, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "panoptic": torch.from_numpy(np.ascontiguousarray(pan, dtype=np.int64)[None]),
            "image_id": self.records[index].image_id,
            "index": index,
        }

    def validate(self) -> None:
        """Load every sample once (no transform); raises the first :class:`DatasetError`."""
        for i in range(len(self)):
            self.load(i)


def collate_panoptic(batch: Sequence[Mapping[str, Any]], void_id: int | None = None) -> dict[str, Any]:
    """Samples → ``image`` uint8 ``[N, 3, H, W]``, ``panoptic`` int64 ``[N, 1, H, W]``, ``image_size`` ``[N, 2]``.

    Sizes must agree (crop with :class:`PanopticAugment`) unless ``void_id``
    is given, in which case smaller samples are padded bottom/right with 0 in
    the image and ``void_id`` in the panoptic map. Use
    ``functools.partial(collate_panoptic, void_id=ds.void_id)`` for that.
    """
    if not batch:
        raise ValueError("collate_panoptic: empty batch")
    sizes = [tuple(b["image"].shape[-2:]) for b in batch]
    for b, size in zip(batch, sizes):
        if tuple(b["panoptic"].shape[-2:]) != size:
            raise ValueError(f"collate_panoptic: image {b.get('image_id')!r} and its panoptic map differ in size")
    h = max(s[0] for s in sizes)
    w = max(s[1] for s in sizes)
    if void_id is None and any(s != (h, w) for s in sizes):
        raise ValueError(
            f"collate_panoptic: sample sizes differ ({sorted(set(sizes))}); crop to a fixed size "
            "or pass void_id to pad"
        )
    n = len(batch)
    images = torch.zeros((n, 3, h, w), dtype=torch.uint8)
    pans = torch.full((n, 1, h, w), 0 if void_id is None else void_id, dtype=torch.int64)
    for i, b in enumerate(batch):
        bh, bw = b["image"].shape[-2:]
        images[i, :, :bh, :bw] = b["image"]
        pans[i, :, :bh, :bw] = b["panoptic"].reshape(1, bh, bw)
    return {
        "image": images,
        "panoptic": pans,
        "image_id": [b.get("image_id") for b in batch],
        "index": torch.tensor([int(b.get("index", -1)) for b in batch], dtype=torch.int64),
        "image_size": torch.tensor(sizes, dtype=torch.int64).reshape(n, 2),  # (H, W) before padding
    }
