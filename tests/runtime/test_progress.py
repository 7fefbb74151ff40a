"""Progress bars: drawn on a terminal's stderr, silent in logs; a long step's bar keeps ticking."""
from __future__ import annotations

import io
import json
import sys
import time

from runtime.progress import bar, ticking
from train.data import stick_figures, synthetic


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_dataset_generation_shows_a_bar_on_a_terminal(tmp_path, monkeypatch):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    stick_figures.write_split(tmp_path, "train", 3, (32, 32), 0)
    synthetic.write_split(tmp_path / "shapes", "val", 2, 0, synthetic.SyntheticConfig(height=32, width=32))
    shown = err.getvalue()
    assert "generating train" in shown and "0/3" in shown
    assert "generating val" in shown and "0/2" in shown
    data = json.loads((tmp_path / "annotations" / "person_keypoints_train.json").read_text())
    assert len(data["images"]) == 3


def test_no_bar_in_a_log(tmp_path, monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    stick_figures.write_split(tmp_path, "val", 2, (32, 32), 0)
    assert err.getvalue() == ""


def test_ticking_redraws_while_a_step_runs(monkeypatch):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    progress = bar(what="export", unit="step", total=1)
    drawn = []
    monkeypatch.setattr(progress, "refresh", lambda *a, **k: drawn.append(time.perf_counter()))
    with ticking(progress, every_s=0.05):
        time.sleep(0.4)
    progress.close()
    assert len(drawn) >= 3
    count = len(drawn)
    time.sleep(0.15)
    assert len(drawn) == count  # the ticker stopped with the step


def test_ticking_a_disabled_bar_starts_no_thread(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    progress = bar(what="export", unit="step", total=1)
    import threading

    before = threading.active_count()
    with ticking(progress, every_s=0.01):
        assert threading.active_count() == before
    progress.close()
