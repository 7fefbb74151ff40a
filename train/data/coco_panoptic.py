"""COCO panoptic format loader.

Files (paths are arguments; :meth:`CocoPanoptic.from_root` assumes COCO's
layout ``ROOT/{split}/*.jpg``, ``ROOT/annotations/panoptic_{split}.json``,
``ROOT/annotations/panoptic_{split}/*.png``, which the synthetic generator
also writes). Category ids map to train ids ``0..K-1`` in the order of the
JSON's ``categories`` list. See ``docs/datasets.md``.
"""

from __future__ import annotations

from pathlib import Path

from train.data.panoptic import (
    IGNORE_LABEL,
    LABEL_DIVISOR,
    CategoryMap,
    PanopticDataset,
    Transform,
    build_records,
    read_json,
)


class CocoPanoptic(PanopticDataset):
    """COCO panoptic: ``json_path`` + ``image_dir/file_name`` + ``panoptic_dir/file_name``."""

    def __init__(
        self,
        image_dir: Path | str,
        panoptic_dir: Path | str,
        json_path: Path | str,
        *,
        label_divisor: int = LABEL_DIVISOR,
        ignore_label: int = IGNORE_LABEL,
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        self.json_path = Path(json_path)
        image_dir = Path(image_dir)
        data = read_json(self.json_path)
        categories = CategoryMap.from_categories(data["categories"], self.json_path)
        records = build_records(
            data,
            self.json_path,
            categories,
            image_path=lambda im: image_dir / str(im["file_name"]),
            label_dir=panoptic_dir,
        )
        super().__init__(
            records,
            categories,
            label_divisor=label_divisor,
            ignore_label=ignore_label,
            transform=transform,
            seed=seed,
        )

    @classmethod
    def from_root(cls, root: Path | str, split: str, **kwargs) -> CocoPanoptic:
        """COCO layout: ``root/{split}``, ``root/annotations/panoptic_{split}{.json,/}``."""
        root = Path(root)
        return cls(
            root / split,
            root / "annotations" / f"panoptic_{split}",
            root / "annotations" / f"panoptic_{split}.json",
            **kwargs,
        )
