"""Panoptic datasets for training: COCO / Cityscapes panoptic loaders, a
synthetic dataset generator, joint augmentation and batch collation.

Every loader returns samples in omgen's convention (see ``docs/datasets.md``):
``image`` uint8 ``[3, H, W]`` and ``panoptic`` int64 ``[1, H, W]`` with
``class * label_divisor + instance`` for thing instances (instance >= 1),
``class * label_divisor`` for stuff and for crowd thing regions, and
``ignore_label * label_divisor`` for void.
"""

from train.data.augment import PanopticAugment, hflip, pad_to, random_crop, rescale
from train.data.cityscapes_panoptic import CityscapesPanoptic
from train.data.coco_panoptic import CocoPanoptic
from train.data.panoptic import (
    IGNORE_LABEL,
    LABEL_DIVISOR,
    CategoryMap,
    DatasetError,
    PanopticDataset,
    PanopticRecord,
    Segment,
    collate_panoptic,
    id2rgb,
    rgb2id,
)

__all__ = [
    "IGNORE_LABEL",
    "LABEL_DIVISOR",
    "CategoryMap",
    "CityscapesPanoptic",
    "CocoPanoptic",
    "DatasetError",
    "PanopticAugment",
    "PanopticDataset",
    "PanopticRecord",
    "Segment",
    "collate_panoptic",
    "hflip",
    "id2rgb",
    "pad_to",
    "random_crop",
    "rescale",
    "rgb2id",
]
