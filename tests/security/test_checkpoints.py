"""A checkpoint from anywhere: a pickle payload is refused with one line and never runs; a write killed mid-way
leaves the previous checkpoint and no temporary that survives the next run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runtime import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this calls os.system: what a hostile checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "RAN"
    path = tmp_path / "hostile.pt"
    torch.save({"step": 1, "model": {"w": torch.ones(1)}, "config": {"task": "panoptic"}, "x": Payload(marker)},
               path)
    return path, marker


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    path, marker = _hostile(tmp_path)
    with pytest.raises(ValueError, match=r"hostile\.pt: refused: the checkpoint holds the Python object .*system"):
        ckpt.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("argv", [["train", "export", "--checkpoint", "{}"], ["train", "eval", "{}"],
                                  ["train.deploy", "export", "{}", "-o", "m.ts"], ["train.deploy", "info", "{}"]])
def test_commands_refuse_a_hostile_checkpoint_in_one_line(tmp_path, argv):
    path, marker = _hostile(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [a.format(path) for a in argv]
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode in (1, 2), done.stderr
    assert not marker.exists(), "the payload ran"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hostile.pt" in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_a_checkpoint_written_by_the_trainer_loads_weights_only(tmp_path):
    import numpy as np

    np.random.seed(7)
    state = ckpt.make_state(3, torch.nn.Linear(2, 2), torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()),
                            config={"lr": 1e-3, "task": "toy"})
    ckpt.save_atomic(state, tmp_path / "last.pt")
    expected = np.random.rand(4)
    loaded = ckpt.load(tmp_path / "last.pt")  # weights_only=True: would raise on a numpy object
    ckpt.set_rng_state(loaded["rng"])
    assert np.array_equal(np.random.rand(4), expected)
    assert loaded["step"] == 3 and loaded["config"] == {"lr": 1e-3, "task": "toy"}


WRITER = """
import sys, torch
sys.path.insert(0, {root!r})
from runtime import checkpoint as ckpt
step = 0
while True:
    step += 1
    ckpt.save_atomic({{"step": step, "model": {{"w": torch.full((4_000_000,), float(step))}}}}, {path!r})
"""


def test_kill_during_checkpoint_writes_keeps_a_whole_checkpoint_and_the_next_run_sweeps(tmp_path):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"step": 0, "model": {"w": torch.zeros(4_000_000)}}, path)
    script = WRITER.format(root=str(ROOT), path=str(path))
    for delay in (0.6, 0.75, 0.9, 1.05, 1.2):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        state = ckpt.load(path)
        assert torch.all(state["model"]["w"] == float(state["step"])), "a torn checkpoint"
    stale = tmp_path / ".last.pt.abc123.tmp"
    stale.write_bytes(b"")  # as a kill between mkstemp and the write leaves it
    swept = ckpt.sweep_temporaries(tmp_path)
    assert stale in swept and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_the_trainer_sweeps_temporaries_before_it_writes(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from runtime_toy import toy_trainer

    (tmp_path / ".last.pt.xyz.tmp").write_bytes(b"")
    trainer = toy_trainer(tmp_path, steps=1, batch=2)
    trainer.close()
    assert not list(tmp_path.glob(".*.tmp"))
