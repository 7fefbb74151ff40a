"""PNG visualisations of panoptic predictions: coloured overlays, center heat maps, offset fields.

All functions take numpy or torch arrays of one image and return / write
uint8 RGB images (written with OpenCV, converted to BGR on the way out).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _squeeze(x: np.ndarray) -> np.ndarray:
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    return x


def panoptic_colors(ids: np.ndarray, label_divisor: int = 1000, ignore_label: int = 255,
                    palette: Optional[np.ndarray] = None, num_classes: Optional[int] = None) -> np.ndarray:
    """[H, W] panoptic ids -> [H, W, 3] uint8: a hue per class, instances jittered, void black.

    Give ``num_classes`` so that one class has one colour in every image.
    """
    ids = _squeeze(_np(ids)).astype(np.int64)
    cls = ids // label_divisor
    ins = ids % label_divisor
    n_cls = num_classes or int(max(cls[cls != ignore_label].max(initial=0) + 1, 1))
    if palette is None:
        hues = (np.arange(n_cls) * 180 // max(n_cls, 1)).astype(np.uint8)
        hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 220)], -1)[None]
        palette = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    out = np.zeros(ids.shape + (3,), np.uint8)
    valid = (cls >= 0) & (cls < n_cls) & (cls != ignore_label)
    base = palette[np.clip(cls, 0, n_cls - 1)].astype(np.int32)
    rng = np.random.default_rng(0)
    jitter = rng.integers(-60, 61, size=(1024, 3))
    base = base + np.where(ins[..., None] > 0, jitter[ins % 1024], 0)
    out[valid] = np.clip(base[valid], 0, 255).astype(np.uint8)
    # instance boundaries in white
    edge = np.zeros(ids.shape, bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    out[edge & (ins > 0)] = 255
    return out


def overlay(image: np.ndarray, colors: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    image = _image_hwc(image)
    return np.clip(image * (1 - alpha) + colors * alpha, 0, 255).astype(np.uint8)


def _image_hwc(image) -> np.ndarray:
    image = _np(image)
    if image.ndim == 4:
        image = image[0]
    if image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    return image.astype(np.float32)


def heatmap(values, vmax: Optional[float] = None) -> np.ndarray:
    """[H, W] floats -> [H, W, 3] uint8 (OpenCV's JET colour map), 0 .. vmax (default: max, at least 1e-6)."""
    v = _squeeze(_np(values)).astype(np.float32)
    top = float(v.max()) if vmax is None else float(vmax)
    v = np.clip(v / max(top, 1e-6), 0.0, 1.0)
    bgr = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return bgr[:, :, ::-1].copy()


def offset_field(offsets, mask=None, max_norm: Optional[float] = None) -> np.ndarray:
    """[2, H, W] (dy, dx) -> [H, W, 3]: hue = direction, brightness = length (optical-flow style)."""
    off = _np(offsets).astype(np.float32)
    if off.ndim == 4:
        off = off[0]
    dy, dx = off[0], off[1]
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    top = float(mag.max()) if max_norm is None else float(max_norm)
    hsv = np.zeros(dy.shape + (3,), np.uint8)
    hsv[..., 0] = (ang / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / max(top, 1e-6) * 255, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if mask is not None:
        rgb[~_squeeze(_np(mask)).astype(bool)] = 0
    return rgb


def draw_centers(image: np.ndarray, centers, valid=None, color=(255, 255, 255)) -> np.ndarray:
    out = np.ascontiguousarray(image.copy())
    c = _np(centers).reshape(-1, 2)
    ok = np.ones(len(c), bool) if valid is None else _np(valid).reshape(-1).astype(bool)
    for (y, x), good in zip(c, ok):
        if good:
            cv2.drawMarker(out, (int(round(float(x))), int(round(float(y)))), color, cv2.MARKER_CROSS, 6, 1)
    return out


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"{path}: cannot write PNG")
    return path


def save_sample(out_dir: str | Path, name: str, image, panoptic_pred, panoptic_truth=None, center=None,
                offsets=None, centers=None, center_valid=None, label_divisor: int = 1000,
                ignore_label: int = 255, num_classes: Optional[int] = None) -> Dict[str, Path]:
    """Write ``{name}_{overlay,truth,center,offsets,panel}.png``; returns the paths."""
    out_dir = Path(out_dir)
    img = _image_hwc(image)
    pred_rgb = overlay(img, panoptic_colors(panoptic_pred, label_divisor, ignore_label, num_classes=num_classes))
    if centers is not None:
        pred_rgb = draw_centers(pred_rgb, centers, center_valid)
    tiles = [img.astype(np.uint8), pred_rgb]
    paths = {"overlay": write_png(out_dir / f"{name}_overlay.png", pred_rgb)}
    if panoptic_truth is not None:
        truth_rgb = overlay(img, panoptic_colors(panoptic_truth, label_divisor, ignore_label, num_classes=num_classes))
        paths["truth"] = write_png(out_dir / f"{name}_truth.png", truth_rgb)
        tiles.append(truth_rgb)
    if center is not None:
        heat = heatmap(center, vmax=1.0)
        paths["center"] = write_png(out_dir / f"{name}_center.png", heat)
        tiles.append(heat)
    if offsets is not None:
        field = offset_field(offsets)
        paths["offsets"] = write_png(out_dir / f"{name}_offsets.png", field)
        tiles.append(field)
    paths["panel"] = write_png(out_dir / f"{name}_panel.png", np.concatenate(tiles, axis=1))
    return paths
