"""Run an exported omgen program of any kind, with the input checks its metadata states. Needs torch only.

Three artifact kinds hold the same pipeline (uint8 images -> network -> the
generated ``infer`` -> named outputs) and the same ``meta.json``:

* ``model.ts``       TorchScript (``torch.jit.load``): checks its input itself;
* ``model.pt2``      ``torch.export`` ExportedProgram (``torch.export.load``), dynamic batch, height and width;
* ``model.aoti.pt2`` an AOTInductor package (``torch._inductor.aoti_load_package``; C++:
  ``torch::inductor::AOTIModelPackageLoader``), compiled from that program.

An exported graph cannot raise a Python error of its own, so a bad image given
to the last two straight away fails a shape guard deep inside torch. ``load``
puts :func:`check_image` (the very function the TorchScript program runs) in
front of every kind, so all three answer a bad image with the same one-line
``ValueError`` before anything is allocated::

    program = load("model.pt2")          # or model.ts / model.aoti.pt2
    outputs = program(images)            # uint8 [N, 3, H, W] -> {name: tensor}

This module imports nothing of omgen: copy it next to a program to run it
where the project is not installed. ``read_meta`` reads the metadata with
zipfile (nothing unpickled or run), bounded in size.
"""

import json
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import torch
from torch import Tensor

__all__ = ["FORMAT", "META_FILE", "check_image", "read_meta", "load", "Program", "artifact_kind"]

FORMAT = "omgen-deployment/1"
META_FILE = "meta.json"
MAX_META_BYTES = 1 << 20  # a deployment's meta.json is a few kB
KINDS = ("ts", "pt2", "aoti")


def _dtype_name(x: Tensor) -> str:
    names = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
             "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
             "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
    for name, dtype in names.items():
        if x.dtype == dtype:
            return name
    return "another dtype"


def check_image(image: Tensor, max_pixels: int, size_divisor: int, strict_size: bool) -> None:
    """A one-line ValueError unless ``image`` is a non-empty uint8 batch [N, 3, H, W] of at most ``max_pixels``
    pixels (batch x height x width; checked from the shape alone, before anything is allocated). TorchScript-able:
    the deployed program calls it too."""
    shape = "[" + ", ".join([str(s) for s in image.shape]) + "]"
    if image.dim() != 4:
        raise ValueError("image: expected a uint8 batch [N, 3, H, W], got rank " + str(image.dim())
                         + " shape " + shape + " (add a batch dimension with unsqueeze(0))")
    if image.dtype != torch.uint8:
        raise ValueError("image: expected dtype uint8 (0..255 RGB), got " + _dtype_name(image) + " shape " + shape)
    if image.shape[1] != 3:
        raise ValueError("image: expected 3 channels (RGB, [N, 3, H, W]), got " + str(image.shape[1])
                         + " in shape " + shape + " (channels-last images need permute(0, 3, 1, 2))")
    if image.shape[0] == 0 or image.shape[2] == 0 or image.shape[3] == 0:
        raise ValueError("image: empty batch or image, shape " + shape)
    if image.shape[0] * image.shape[2] * image.shape[3] > max_pixels:
        raise ValueError("image: " + str(image.shape[0] * image.shape[2] * image.shape[3])
                         + " pixels (batch x height x width) in shape " + shape + ", over this program's limit of "
                         + str(max_pixels) + " (export with --max-pixels to change it)")
    if strict_size and (image.shape[2] % size_divisor != 0 or image.shape[3] % size_divisor != 0):
        raise ValueError("image: height and width must be multiples of " + str(size_divisor)
                         + ", got shape " + shape)


def _check_ranges(image: Tensor, dims: Dict[str, Any]) -> None:
    """The dynamic-shape ranges an exported program was traced for (``meta.input.dims``), as one-line errors."""
    for axis, name in ((0, "batch"), (2, "height"), (3, "width")):
        bounds = dims.get(name)
        if isinstance(bounds, list) and len(bounds) == 2:
            value = int(image.shape[axis])
            if not int(bounds[0]) <= value <= int(bounds[1]):
                raise ValueError(f"image: {name} {value} in shape {list(image.shape)} is outside this program's "
                                 f"range {int(bounds[0])}..{int(bounds[1])}")


def read_meta(path: str | Path) -> Dict[str, Any]:
    """The ``meta.json`` inside an exported program of any kind (a zip archive: ``<dir>/extra/meta.json``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: {'no such file' if not path.exists() else 'not a regular file'}")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [i for i in archive.infolist()
                       if re.fullmatch(r"[^/]+/extra/" + re.escape(META_FILE), i.filename)]
            if len(entries) != 1:
                raise ValueError(f"{path}: not an omgen deployment (no {META_FILE} in the archive)")
            if entries[0].file_size > MAX_META_BYTES:
                raise ValueError(f"{path}: {META_FILE} is {entries[0].file_size} bytes, over {MAX_META_BYTES}")
            with archive.open(entries[0]) as f:
                data = f.read(MAX_META_BYTES + 1)  # the size in the directory may lie
            if len(data) > MAX_META_BYTES:
                raise ValueError(f"{path}: {META_FILE} is over {MAX_META_BYTES} bytes")
            text = data.decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not an exported program ({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: {META_FILE} is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: {META_FILE} is not a JSON object")
    return meta


def artifact_kind(meta: Dict[str, Any], path: str | Path) -> str:
    kind = (meta.get("artifact") or {}).get("kind") if isinstance(meta.get("artifact"), dict) else None
    if kind is None:  # programs written before the artifact record: TorchScript, or a static torch.export
        kind = "pt2" if str(path).endswith(".pt2") else "ts"
    if kind not in KINDS:
        raise ValueError(f"{path}: unknown artifact kind {kind!r} (expected one of {', '.join(KINDS)})")
    return kind


class Program:
    """An exported program of any kind behind one call: ``program(images) -> {output name: tensor}``."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.kind = artifact_kind(self.meta, self.path)
        contract = self.meta.get("input") or {}
        self.max_pixels = int(contract.get("max_pixels", 4 * 1024 * 1024))
        self.size_divisor = int(contract.get("size_divisor", 32))
        self.strict_size = contract.get("size_policy") == "strict"
        self.dims: Dict[str, Any] = dict(contract.get("dims") or {})
        self.output_names: List[str] = list(self.meta.get("output_order") or self.meta.get("outputs") or [])
        if self.kind == "ts":
            self._run = torch.jit.load(str(self.path), map_location=device).eval()
        elif self.kind == "pt2":
            self._run = torch.export.load(str(self.path)).module()
            if device != "cpu":
                self._run = self._run.to(device)
        else:
            from torch._inductor import aoti_load_package

            self._run = aoti_load_package(str(self.path))

    def check(self, image: Tensor) -> None:
        check_image(image, self.max_pixels, self.size_divisor, self.strict_size)
        _check_ranges(image, self.dims)

    def __call__(self, image: Tensor) -> Dict[str, Tensor]:
        self.check(image)
        with torch.no_grad():
            out = self._run(image)
        if isinstance(out, dict):
            return dict(out)
        values = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(values) != len(self.output_names):
            raise ValueError(f"{self.path}: the program returned {len(values)} tensors, its metadata names "
                             f"{len(self.output_names)}")
        return dict(zip(self.output_names, values))


def load(path: str | Path, device: str = "cpu") -> Program:
    """An exported program (``.ts``, ``.pt2`` or ``.aoti.pt2``) with its metadata and input checks."""
    return Program(path, device)
