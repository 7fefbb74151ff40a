"""From the raw Cityscapes download to the panoptic format the loader reads, with the maintainers' converter.

A Cityscapes user starts from ``gtFine_trainvaltest.zip`` and
``leftImg8bit_trainvaltest.zip`` unpacked under one ROOT::

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png

:func:`prepare_cityscapes` checks that layout (one-line errors naming the
first missing or unreadable file), runs ``cityscapesscripts``'
``createPanopticImgs.convert2panoptic`` (label ids, the official format) for
each split whose panoptic JSON is missing, and reports what each split holds.
The converter writes into a temporary folder beside its destination; the PNG
folder and then the JSON are moved into place only when it has finished, so an
interrupted run leaves nothing that looks converted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from train.data.panoptic import DatasetError, _err

#: Splits converted by default (the test split's public annotations are empty).
DEFAULT_SPLITS = ("train", "val")
#: An instanceIds PNG larger than this is refused before it is opened (Cityscapes' are ~30 kB).
MAX_LABEL_BYTES = 64 << 20
#: ... and so is one whose header announces more pixels than this (Cityscapes: 1024 x 2048).
MAX_LABEL_PIXELS = 64 << 20
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
IMAGE_SUFFIX = "_leftImg8bit.png"


@dataclasses.dataclass(frozen=True)
class SplitReport:
    """What one split holds after preparation."""

    split: str
    images: int
    segments: int
    thing_instances: int
    crowd_regions: int
    categories: int
    converted: bool  # False: the panoptic JSON was already there
    seconds: float
    json_path: Path

    def line(self) -> str:
        how = f"converted in {self.seconds:.1f} s" if self.converted else "as found"
        return (f"{self.split}: {self.images} images, {self.segments} segments ({self.thing_instances} thing "
                f"instances, {self.crowd_regions} crowd regions), {self.categories} categories; {self.json_path} "
                f"({how})")


def _regular_bounded(path: Path, what: str, limit: int) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _err(path, f"cannot read {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _err(path, f"{what} is not a regular file")
    if st.st_size > limit:
        raise _err(path, f"{what} is {st.st_size} bytes, over the limit of {limit}")


def _header_size(path: Path, what: str, modes: Tuple[str, ...]) -> Tuple[int, int]:
    """(width, height) from a PNG header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise _err(path, f"{what} is {im.format or 'not an image'}, expected a PNG")
            if im.mode not in modes:
                raise _err(path, f"{what} has mode {im.mode}, expected one of {', '.join(modes)}")
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise _err(path, f"cannot read {what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None
    if w * h > MAX_LABEL_PIXELS:
        raise _err(path, f"{what} is {w}x{h}, over the limit of {MAX_LABEL_PIXELS} pixels")
    return w, h


def raw_pairs(root: Path, split: str) -> List[Tuple[Path, Path]]:
    """(instanceIds PNG, leftImg8bit image) of every annotated frame of ``split``, sorted; layout errors raise
    :class:`DatasetError` naming the first missing or unreadable file."""
    gt_split = root / "gtFine" / split
    if not (root / "gtFine").is_dir():
        raise _err(root / "gtFine", "folder not found: unpack gtFine_trainvaltest.zip into the dataset root")
    if not gt_split.is_dir():
        raise _err(gt_split, f"folder not found: the gtFine download has no {split!r} split")
    labels = sorted(gt_split.glob(f"*/*{INSTANCE_SUFFIX}"))
    if not labels:
        raise _err(gt_split, f"no {{city}}/*{INSTANCE_SUFFIX} files (is this gtFine of Cityscapes?)")
    pairs = []
    for label in labels:
        city = label.parent.name
        frame = label.name[: -len(INSTANCE_SUFFIX)]
        if not frame.startswith(city + "_"):
            raise _err(label, f"file name does not start with its city folder {city!r}")
        image = root / "leftImg8bit" / split / city / (frame + IMAGE_SUFFIX)
        if not image.exists():
            raise _err(image, "image not found: unpack leftImg8bit_trainvaltest.zip into the dataset root")
        _regular_bounded(label, "instanceIds PNG", MAX_LABEL_BYTES)
        _regular_bounded(image, "image", 4 * MAX_LABEL_BYTES)
        size = _header_size(label, "instanceIds PNG", ("I", "I;16", "I;16B", "L"))
        if _header_size(image, "image", ("RGB", "RGBA", "L")) != size:
            raise _err(label, f"is {size[0]}x{size[1]} but its image {image.name} is not")
        pairs.append((label, image))
    return pairs


def _report(split: str, json_path: Path, converted: bool, seconds: float) -> SplitReport:
    from train.data.panoptic import read_json

    data = read_json(json_path)
    things = {c["id"] for c in data["categories"] if isinstance(c, dict) and c.get("isthing")}
    segments = instances = crowd = 0
    for ann in data["annotations"]:
        for s in ann.get("segments_info", []):
            segments += 1
            if s.get("category_id") in things:
                if s.get("iscrowd"):
                    crowd += 1
                else:
                    instances += 1
    return SplitReport(split, len(data["images"]), segments, instances, crowd, len(data["categories"]),
                       converted, seconds, json_path)


def _convert(root: Path, split: str, log: io.TextIOBase) -> None:
    try:
        from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
    except ImportError:
        raise DatasetError(f"{root}: converting the raw Cityscapes annotations needs cityscapesscripts "
                           "(pip install 'omgen[cityscapes]')") from None
    gt = root / "gtFine"
    name = f"cityscapes_panoptic_{split}"
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=gt))
    try:
        with contextlib.redirect_stdout(log):
            try:
                convert2panoptic(cityscapesPath=str(gt), outputFolder=str(work), useTrainId=False,
                                 setNames=[split])
            except SystemExit:  # its printError exits the process
                raise _err(gt / split, "cityscapesscripts' converter stopped (see the log above)") from None
        folder, js = gt / name, gt / f"{name}.json"
        if folder.exists():  # a PNG folder without its JSON: an earlier run was interrupted
            shutil.rmtree(folder)
        (work / name).replace(folder)
        (work / f"{name}.json").replace(js)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare_cityscapes(root: Path | str, splits: Sequence[str] = DEFAULT_SPLITS, *, force: bool = False,
                       log: Optional[io.TextIOBase] = None) -> List[SplitReport]:
    """Check the raw layout of every split and convert those without a panoptic JSON (all with ``force``).

    The converter's own output goes to ``log`` (discarded by default).
    """
    root = Path(root)
    if not root.is_dir():
        raise _err(root, "dataset root not found (the folder holding gtFine/ and leftImg8bit/)")
    reports = []
    for split in splits:
        js = root / "gtFine" / f"cityscapes_panoptic_{split}.json"
        if js.exists() and not force:
            reports.append(_report(split, js, False, 0.0))
            continue
        raw_pairs(root, split)
        t = time.perf_counter()
        _convert(root, split, log if log is not None else io.StringIO())
        reports.append(_report(split, js, True, time.perf_counter() - t))
    return reports


def coco_report(root: Path | str, split: str) -> SplitReport:
    """The counts of a COCO-layout split (``ROOT/annotations/panoptic_{split}.json``)."""
    return _report(split, Path(root) / "annotations" / f"panoptic_{split}.json", False, 0.0)


def summary_json(reports: Sequence[SplitReport]) -> Dict[str, Dict[str, object]]:
    return {r.split: {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(r).items()
                      if k != "split"} for r in reports}


__all__ = ["DEFAULT_SPLITS", "SplitReport", "prepare_cityscapes", "raw_pairs", "summary_json", "coco_report"]
