"""Cityscapes panoptic format loader.

Files, as written by cityscapesScripts' ``createPanopticImgs``::

    ROOT/gtFine/cityscapes_panoptic_{split}.json
    ROOT/gtFine/cityscapes_panoptic_{split}/{city}_{seq}_{frame}_gtFine_panoptic.png
    ROOT/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png

``category_id`` in the JSON is the Cityscapes *label id* (7 road … 33
bicycle); it maps to the 19 standard train ids (things 11–18) whatever the
order of the JSON's ``categories``. Pixels of labels not evaluated in
Cityscapes are 0 in the PNG and become void; a thing segment with
``iscrowd`` (a "group" region, e.g. cargroup) becomes ``class * divisor``.
See ``docs/datasets.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from train.data.panoptic import (
    IGNORE_LABEL,
    LABEL_DIVISOR,
    CategoryMap,
    PanopticDataset,
    Transform,
    _err,
    build_records,
    read_json,
)

# The built-in copy of the Cityscapes label table (label id, name, isthing,
# colour) in train-id order 0..18: a fallback for machines without
# cityscapesscripts; tests/train/test_cityscapes_official.py proves it equal to
# ``cityscapesscripts.helpers.labels``.
BUILTIN_CITYSCAPES_CATEGORIES: tuple[tuple[int, str, bool, tuple[int, int, int]], ...] = (
    (7, "road", False, (128, 64, 128)),
    (8, "sidewalk", False, (244, 35, 232)),
    (11, "building", False, (70, 70, 70)),
    (12, "wall", False, (102, 102, 156)),
    (13, "fence", False, (190, 153, 153)),
    (17, "pole", False, (153, 153, 153)),
    (19, "traffic light", False, (250, 170, 30)),
    (20, "traffic sign", False, (220, 220, 0)),
    (21, "vegetation", False, (107, 142, 35)),
    (22, "terrain", False, (152, 251, 152)),
    (23, "sky", False, (70, 130, 180)),
    (24, "person", True, (220, 20, 60)),
    (25, "rider", True, (255, 0, 0)),
    (26, "car", True, (0, 0, 142)),
    (27, "truck", True, (0, 0, 70)),
    (28, "bus", True, (0, 60, 100)),
    (31, "train", True, (0, 80, 100)),
    (32, "motorcycle", True, (0, 0, 230)),
    (33, "bicycle", True, (119, 11, 32)),
)


def official_cityscapes_categories() -> tuple[tuple[int, str, bool, tuple[int, int, int]], ...] | None:
    """The evaluated labels of ``cityscapesscripts.helpers.labels`` in train-id order, or None when the
    package (the ``cityscapes`` extra) is not installed."""
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError:
        return None
    evaluated = sorted((lab for lab in labels if not lab.ignoreInEval), key=lambda lab: lab.trainId)
    return tuple((int(lab.id), str(lab.name), bool(lab.hasInstances), tuple(int(c) for c in lab.color))
                 for lab in evaluated)  # type: ignore[misc]


_official = official_cityscapes_categories()
#: Where the table comes from: "cityscapesscripts" (the maintainers' labels.py) or "built-in".
CITYSCAPES_LABELS_SOURCE = "cityscapesscripts" if _official is not None else "built-in"
CITYSCAPES_CATEGORIES = _official if _official is not None else BUILTIN_CITYSCAPES_CATEGORIES

CITYSCAPES_CATEGORY_MAP = CategoryMap(
    category_ids=tuple(c[0] for c in CITYSCAPES_CATEGORIES),
    names=tuple(c[1] for c in CITYSCAPES_CATEGORIES),
    isthing=tuple(c[2] for c in CITYSCAPES_CATEGORIES),
    colors=tuple(c[3] for c in CITYSCAPES_CATEGORIES),
)


def _city_image_path(root: Path, split: str, json_path: Path) -> Any:
    def image_path(im: Mapping[str, Any]) -> Path:
        name = str(im["file_name"])
        # createPanopticImgs (cityscapesscripts 2.x) names the image "<frame>_gtFine_leftImg8bit.png"; the file
        # in leftImg8bit/ is "<frame>_leftImg8bit.png".
        if name.endswith("_gtFine_leftImg8bit.png"):
            name = name[: -len("_gtFine_leftImg8bit.png")] + "_leftImg8bit.png"
        city = name.split("_", 1)[0]
        if "_" not in name or not city:
            raise _err(json_path, f"image file_name {name!r} does not start with '<city>_'")
        return root / "leftImg8bit" / split / city / name

    return image_path


class CityscapesPanoptic(PanopticDataset):
    """Cityscapes panoptic ``split`` ('train', 'val', …) under ``root``."""

    def __init__(
        self,
        root: Path | str,
        split: str,
        *,
        label_divisor: int = LABEL_DIVISOR,
        ignore_label: int = IGNORE_LABEL,
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        self.json_path = root / "gtFine" / f"cityscapes_panoptic_{split}.json"
        data = read_json(self.json_path)
        # The JSON's categories must agree with the fixed table (same label ids
        # and thing flags); their order does not matter.
        listed = CategoryMap.from_categories(data["categories"], self.json_path)
        table = dict(zip(CITYSCAPES_CATEGORY_MAP.category_ids, CITYSCAPES_CATEGORY_MAP.isthing))
        if 0 in listed.category_ids and max(listed.category_ids) < len(CITYSCAPES_CATEGORY_MAP.category_ids):
            raise _err(self.json_path, "category ids are train ids 0..18 (createPanopticImgs --use-train-id); "
                                       "convert without --use-train-id: the format and its evaluator use label ids")
        for cid, name, th in zip(listed.category_ids, listed.names, listed.isthing):
            if cid not in table:
                raise _err(self.json_path, f"category id {cid} ({name!r}) is not an evaluated Cityscapes label id "
                                           f"(those are {sorted(table)})")
            if table[cid] != th:
                raise _err(self.json_path, f"category id {cid} ({name!r}) has isthing={int(th)}, Cityscapes says "
                                           f"{int(table[cid])}")
        absent = [(c, n) for c, n in zip(CITYSCAPES_CATEGORY_MAP.category_ids, CITYSCAPES_CATEGORY_MAP.names)
                  if c not in listed.category_ids]
        if absent:
            raise _err(self.json_path, f"category {absent[0][0]} ({absent[0][1]!r}) is missing from 'categories' "
                                       f"({len(absent)} of the 19 evaluated labels are); the official converter "
                                       "lists all 19 and the official evaluator needs them")
        records = build_records(
            data,
            self.json_path,
            CITYSCAPES_CATEGORY_MAP,
            image_path=_city_image_path(root, split, self.json_path),
            label_dir=root / "gtFine" / f"cityscapes_panoptic_{split}",
        )
        super().__init__(
            records,
            CITYSCAPES_CATEGORY_MAP,
            label_divisor=label_divisor,
            ignore_label=ignore_label,
            transform=transform,
            seed=seed,
        )
