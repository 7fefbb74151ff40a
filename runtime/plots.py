"""Training curves as a PNG: every loss term of any OM against the step, and the evaluation metrics.

Read from the run's ``metrics.jsonl`` (runtime.metrics), so the plot needs nothing but the file: the trainer
writes ``curves.png`` at the end of training, ``train eval`` writes one beside its eval.json with the run's curves
and the new evaluation as a marked point. Drawn with matplotlib's object API (``Figure`` on an Agg canvas, no
pyplot) and written atomically.
"""
from __future__ import annotations

import json
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

Series = Dict[str, List[Tuple[int, float]]]

# what a training record holds besides its loss terms (runtime.trainer's flush)
NOT_LOSSES = ("kind", "step", "time", "lr", "images_per_s")
NOT_METRICS = ("kind", "step", "time", "images", "eval_seconds")
MAX_METRICS_BYTES = 64 << 20


def read_metrics(path: str | Path) -> List[Dict[str, Any]]:
    """A run's metrics.jsonl for a plot, read defensively (it may sit beside a stranger's checkpoint): nothing
    unless it is a regular file of at most 64 MiB; lines that are not JSON objects are skipped."""
    try:
        info = os.stat(path)
    except OSError:
        return []
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_METRICS_BYTES:
        return []
    records = []
    with open(path, "rb") as handle:
        for line in handle.read(MAX_METRICS_BYTES + 1).decode("utf-8", "replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def curve_series(records: Sequence[Mapping[str, Any]]) -> Tuple[Series, Series]:
    """(losses, metrics): name -> [(step, value)] in file order, finite numbers only. Losses are the training
    records' scalars but the learning rate and throughput; metrics are the evaluation records' scalars."""
    losses: Series = {}
    metrics: Series = {}
    for r in records:
        kind, step = r.get("kind"), r.get("step")
        if not isinstance(step, int) or kind not in ("train", "eval"):
            continue
        target, skip = (losses, NOT_LOSSES) if kind == "train" else (metrics, NOT_METRICS)
        for key, value in r.items():
            number = _number(value)
            if key not in skip and number is not None:
                target.setdefault(str(key), []).append((step, number))
    return losses, metrics


def plain_label(text: str, limit: int = 40) -> str:
    """A name (a loss term, a dataset's class) on one line of a figure: control characters go, long names are cut.
    Every text is drawn with ``parse_math=False``, so a stranger's ``$...$`` is not read as math."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def write_curves(path: str | Path, records: Sequence[Mapping[str, Any]], *, title: str = "",
                 extra_metrics: Optional[Mapping[str, Any]] = None, extra_step: Optional[int] = None,
                 dpi: int = 100) -> Optional[Path]:
    """Two panels: the loss terms (log scale when all are positive) and the evaluation metrics against the step.
    ``extra_metrics`` (an eval run's result at ``extra_step``) are drawn as stars. Returns None when there is
    nothing to draw (no finite training value and no metric)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    losses, metrics = curve_series(records)
    extra = {k: v for k, v in ((str(k), _number(v)) for k, v in (extra_metrics or {}).items())
             if v is not None and k not in NOT_METRICS}
    if not losses and not metrics and not extra:
        return None
    fig = Figure(figsize=(12, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_loss, ax_metric = fig.subplots(1, 2)
    for name in sorted(losses, key=lambda n: (n != "loss", n)):
        steps, values = zip(*losses[name])
        ax_loss.plot(steps, values, label=plain_label(name), linewidth=2.2 if name == "loss" else 1.2,
                     marker="o" if len(steps) == 1 else None)
    if losses and all(v > 0 for s in losses.values() for _, v in s):
        ax_loss.set_yscale("log")
    ax_loss.set_title("training losses", parse_math=False)
    ax_loss.set_xlabel("step")
    for name in sorted(metrics):
        steps, values = zip(*metrics[name])
        ax_metric.plot(steps, values, marker="o", label=plain_label(name))
    for name in sorted(extra):
        ax_metric.plot([extra_step or 0], [extra[name]], marker="*", markersize=14, linestyle="none",
                       label=plain_label(f"{name} (this eval)"))
    ax_metric.set_title("evaluation", parse_math=False)
    ax_metric.set_xlabel("step")
    for ax in (ax_loss, ax_metric):
        ax.grid(True, alpha=0.3)
        if ax.get_lines():
            legend = ax.legend(fontsize=8, ncol=2 if len(ax.get_lines()) > 6 else 1)
            for text in legend.get_texts():
                text.set_parse_math(False)
        else:
            ax.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax.transAxes,
                    color="gray")
    if title:
        fig.suptitle(plain_label(title, 120), parse_math=False)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """``fig`` as a PNG at ``path``, through a temporary file renamed into place: no half-written picture."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():  # a glyph the font lacks (a stranger's class name) is drawn as a box
            warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
            fig.savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
