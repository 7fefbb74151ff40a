"""Metrics as JSON lines (one object per record), plus TensorBoard when it is installed (``omgen[tensorboard]``)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLogger:
    def __init__(self, out_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True,
                 filename: str = "metrics.jsonl") -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / filename
        self._handle = None
        self._writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
            except Exception:  # noqa: BLE001 - optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(str(Path(out_dir) / "tensorboard"))

    @property
    def tensorboard(self) -> bool:
        return self._writer is not None

    def where(self, asked_tensorboard: bool) -> str:
        """One line for the start of a run: where its metrics go, and why TensorBoard is off when it is."""
        folder = self.path.parent
        if self._writer is not None:
            board = f"TensorBoard: tensorboard --logdir {folder / 'tensorboard'}"
        elif asked_tensorboard:
            board = "TensorBoard: off (not installed: pip install 'omgen[tensorboard]')"
        else:
            board = "TensorBoard: off (train.tensorboard: false)"
        return f"metrics: {self.path} (curves.png at the end); {board}"

    def log(self, step: int, values: Mapping[str, Any], kind: str = "train") -> Optional[Dict[str, Any]]:
        if not self.enabled:
            return None
        record = {"kind": kind, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: _plain(v) for k, v in values.items()})
        assert self._handle is not None
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("kind", "step", "time") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{kind}/{key}", value, step)
        return record

    def reset(self) -> None:
        """Start the file again (a fresh run in a folder that holds an older one)."""
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_jsonl(path: str | Path) -> list[Dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
