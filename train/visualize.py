"""PNG visualisations of panoptic predictions: coloured overlays, center heat maps, offset fields, and the
per-image panel people look at (titled tiles and a legend of the dataset's class colours and names).

The tile functions take numpy or torch arrays of one image and return uint8 RGB images (written with OpenCV,
converted to BGR on the way out). The panel is drawn with matplotlib's object API (``Figure`` on an Agg canvas: no
pyplot, no global backend switched under the caller) and written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

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
        palette = _hue_palette(n_cls)
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


LegendEntry = Tuple[str, Tuple[int, int, int]]


def dataset_palette(colors: Optional[Sequence[Sequence[int]]]) -> Optional[np.ndarray]:
    """The dataset's class colours (train-id order) as a palette, or None when it has none (COCO files without a
    ``color``: all black), so that the hue palette is used instead."""
    if not colors:
        return None
    palette = np.asarray([tuple(c)[:3] for c in colors], np.uint8).reshape(-1, 3)
    return palette if palette.any() else None


def class_legend(ids_list: Sequence[np.ndarray], names: Sequence[str], palette: np.ndarray,
                 label_divisor: int = 1000, ignore_label: int = 255) -> List[LegendEntry]:
    """The classes present in any of ``ids_list`` (panoptic ids), in train-id order, with their colours; void last."""
    present = set()
    for ids in ids_list:
        present.update(int(c) for c in np.unique(_squeeze(_np(ids)).astype(np.int64) // label_divisor))
    entries: List[LegendEntry] = [(str(names[c]) if c < len(names) else f"class {c}", tuple(int(v) for v in palette[c]))
                                  for c in sorted(present) if 0 <= c < len(palette) and c != ignore_label]
    if any(c == ignore_label or not 0 <= c < len(palette) for c in present):
        entries.append(("void", (0, 0, 0)))
    return entries


def _hue_palette(n: int) -> np.ndarray:
    hues = (np.arange(n) * 180 // max(n, 1)).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 220)], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def write_figure(path: str | Path, tiles: Sequence[Tuple[str, np.ndarray]], legend: Sequence[LegendEntry] = (),
                 *, title: str = "", arrows: Optional[Tuple[int, np.ndarray, np.ndarray]] = None,
                 markers: Optional[Dict[int, np.ndarray]] = None, tile_inches: float = 3.4,
                 max_width_inches: float = 18.0, dpi: int = 100) -> Path:
    """Tiles in a grid (at most ``max_width_inches`` wide, each ``tile_inches`` tall, small images scaled up with
    nearest-neighbour), each under its title, then one row of legend patches. ``markers[k]``: [N, 2] (y, x) points
    drawn over tile k; ``arrows``: (tile index, [2, H, W] (dy, dx) offsets) drawn as a sparse quiver over that tile.
    Written atomically (runtime.plots.save_figure)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from runtime.plots import plain_label, save_figure

    h, w = tiles[0][1].shape[:2]
    tile_w = tile_inches * w / max(h, 1)
    cols = max(1, min(len(tiles), int(max_width_inches / max(tile_w, 1e-6) + 1e-6)))
    rows = -(-len(tiles) // cols)
    legend_rows = -(-len(legend) // 6) if legend else 0
    fig = Figure(figsize=(cols * tile_w + 0.4, rows * (tile_inches + 0.45) + 0.35 * legend_rows + (0.5 if title else 0.1)),
                 dpi=dpi)
    FigureCanvasAgg(fig)
    legend_share = 0.35 * legend_rows / fig.get_figheight()
    top = 1 - (0.5 if title else 0.1) / fig.get_figheight()
    grid = fig.add_gridspec(rows, cols, left=0.01, right=0.99, top=top, bottom=legend_share + 0.01, hspace=0.18,
                            wspace=0.03)
    for k, (name, rgb) in enumerate(tiles):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(plain_label(name, 60), fontsize=11, parse_math=False)
        ax.set_xticks([])
        ax.set_yticks([])
        if markers and k in markers and len(markers[k]):
            pts = np.asarray(markers[k], np.float64).reshape(-1, 2)
            ax.scatter(pts[:, 1], pts[:, 0], s=70, marker="X", c="white", edgecolors="black", linewidths=1.0)
        if arrows is not None and arrows[0] == k:
            off, where = arrows[1], arrows[2]
            step = max(1, max(h, w) // 12)
            ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
            dy, dx = off[0][ys, xs], off[1][ys, xs]
            keep = (np.hypot(dy, dx) > 0.5) & where[ys, xs]
            if keep.any():
                ax.quiver(xs[keep], ys[keep], dx[keep], dy[keep], angles="xy", scale_units="xy", scale=1.0,
                          color="white", width=0.004, headwidth=4, alpha=0.9)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
    if title:
        fig.suptitle(plain_label(title, 120), fontsize=12, parse_math=False)
    if legend:
        handles = [Patch(facecolor=np.asarray(rgb) / 255.0, edgecolor="black", label=plain_label(name))
                   for name, rgb in legend]
        shown = fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), frameon=False,
                           fontsize=10, handlelength=1.6, handleheight=1.2)
        for text in shown.get_texts():
            text.set_parse_math(False)
    return save_figure(fig, path)


def save_sample(out_dir: str | Path, name: str, image, panoptic_pred, panoptic_truth=None, center=None,
                offsets=None, centers=None, center_valid=None, label_divisor: int = 1000,
                ignore_label: int = 255, num_classes: Optional[int] = None,
                class_names: Optional[Sequence[str]] = None,
                class_colors: Optional[Sequence[Sequence[int]]] = None) -> Dict[str, Path]:
    """Write ``{name}_{overlay,truth,center,offsets}.png`` (the tiles at the image's size) and ``{name}_panel.png``:
    the titled tiles side by side with the decoded centers marked, the offsets drawn as arrows over the image and a
    legend of the classes present with the dataset's colours (``class_colors``, train-id order) and names; returns
    the paths."""
    out_dir = Path(out_dir)
    img = _image_hwc(image)
    n_cls = num_classes or (len(class_colors) if class_colors else None) or int(
        max(int(_squeeze(_np(panoptic_pred)).max(initial=0)) // label_divisor + 1, 1))
    palette = dataset_palette(class_colors)
    if palette is None or len(palette) < n_cls:
        palette = _hue_palette(n_cls)
    names = list(class_names) if class_names else [f"class {c}" for c in range(n_cls)]
    if centers is not None:
        pts = _np(centers).reshape(-1, 2)
        kept = np.ones(len(pts), bool) if center_valid is None else _np(center_valid).reshape(-1).astype(bool)
        pts = pts[kept]
    pred_rgb = overlay(img, panoptic_colors(panoptic_pred, label_divisor, ignore_label, palette, n_cls))
    paths = {"overlay": write_png(out_dir / f"{name}_overlay.png",
                                  draw_centers(pred_rgb, centers, center_valid) if centers is not None else pred_rgb)}
    segments = len(np.unique(_squeeze(_np(panoptic_pred))))
    tiles = [("image", img.astype(np.uint8)), (f"prediction ({segments} segments)", pred_rgb)]
    markers: Dict[int, np.ndarray] = {}
    if centers is not None:
        markers[1] = pts
        tiles[1] = (f"prediction ({segments} segments, {len(pts)} centers)", pred_rgb)
    ids_list = [panoptic_pred]
    if panoptic_truth is not None:
        truth_rgb = overlay(img, panoptic_colors(panoptic_truth, label_divisor, ignore_label, palette, n_cls))
        paths["truth"] = write_png(out_dir / f"{name}_truth.png", truth_rgb)
        tiles.append((f"ground truth ({len(np.unique(_squeeze(_np(panoptic_truth))))} segments)", truth_rgb))
        ids_list.append(panoptic_truth)
    if center is not None:
        heat = heatmap(center, vmax=1.0)
        paths["center"] = write_png(out_dir / f"{name}_center.png", heat)
        top = float(_squeeze(_np(center)).max(initial=0.0))
        tiles.append((f"center heat map (max {top:.2f})", heat))
        if centers is not None:
            markers[len(tiles) - 1] = pts
    arrows = None
    if offsets is not None:
        field = offset_field(offsets)
        paths["offsets"] = write_png(out_dir / f"{name}_offsets.png", field)
        off = _np(offsets).astype(np.float32)
        off = off[0] if off.ndim == 4 else off
        tiles.append(("offsets (arrows: thing pixels' votes)", overlay(img, field, alpha=0.6)))
        things = _squeeze(_np(panoptic_pred)).astype(np.int64) % label_divisor > 0
        arrows = (len(tiles) - 1, off, things)
    legend = class_legend(ids_list, names, palette, label_divisor, ignore_label)
    paths["panel"] = write_figure(out_dir / f"{name}_panel.png", tiles, legend, title=name, arrows=arrows,
                                  markers=markers)
    return paths


def save_detections(out_dir: str | Path, name: str, image, boxes, scores, classes, truth_boxes, truth_classes,
                    class_names: Sequence[str], min_score: float = 0.3) -> Path:
    """``{name}_boxes.png``: the predicted boxes of score >= ``min_score`` (class colour, score beside) next to the
    ground-truth boxes, titled, with a legend of the classes drawn. Boxes are x1, y1, x2, y2 in pixels."""
    img = _image_hwc(image).astype(np.uint8)
    h, w = img.shape[:2]
    scale = max(1, 384 // max(h, w, 1))  # draw on a scaled-up copy: crisp one-pixel lines at a readable size
    palette = _hue_palette(max(len(class_names), 1))
    boxes, scores, classes = _np(boxes).reshape(-1, 4), _np(scores).reshape(-1), _np(classes).reshape(-1)
    keep = scores >= min_score
    truth_boxes, truth_classes = _np(truth_boxes).reshape(-1, 4), _np(truth_classes).reshape(-1)

    def draw(kept_boxes, kept_classes, labels) -> np.ndarray:
        out = np.ascontiguousarray(cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST))
        for box, cls, label in zip(kept_boxes, kept_classes, labels):
            color = tuple(int(v) for v in palette[int(cls) % len(palette)])
            x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
            if label:
                cv2.putText(out, label, (x1 + 2, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1,
                            cv2.LINE_AA)
        return out

    shown = [int(c) for c in classes[keep]] + [int(c) for c in truth_classes]
    legend = [(str(class_names[c]) if c < len(class_names) else f"class {c}",
               tuple(int(v) for v in palette[c % len(palette)])) for c in sorted(set(shown)) if c >= 0]
    tiles = [(f"prediction ({int(keep.sum())} boxes with score >= {min_score:g})",
              draw(boxes[keep], classes[keep], [f"{v:.2f}" for v in scores[keep]])),
             (f"ground truth ({len(truth_boxes)} boxes)", draw(truth_boxes, truth_classes, [""] * len(truth_boxes)))]
    return write_figure(Path(out_dir) / f"{name}_boxes.png", tiles, legend, title=name)
