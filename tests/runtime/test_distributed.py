"""2-process gloo DDP on the CPU takes the same steps as 1 process with the same global batch."""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str, steps: int, batch: int) -> None:
    sys.path[:0] = [str(HERE), str(HERE.parents[1])]
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from runtime.distributed import setup
    from runtime_toy import toy_trainer

    info = setup("cpu")
    assert info.world_size == world and info.rank == rank
    trainer = toy_trainer(out_dir, steps=steps, batch=batch, dist=info)
    result = trainer.fit()
    trainer.close()
    if rank == 0:
        Path(out_dir, "result.json").write_text(json.dumps([h["loss"] for h in result["history"]]))


def test_two_process_ddp_matches_one_process(tmp_path):
    steps, batch = 4, 8
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "ddp"), steps, batch), nprocs=2, join=True)
    ddp_losses = json.loads((tmp_path / "ddp" / "result.json").read_text())

    sys.path.insert(0, str(HERE))
    from runtime import checkpoint as ckpt
    from runtime_toy import toy_trainer

    single = toy_trainer(tmp_path / "one", steps=steps, batch=batch)
    result = single.fit()
    single.close()
    one_losses = [h["loss"] for h in result["history"]]
    assert len(ddp_losses) == len(one_losses) == steps
    assert one_losses[-1] != one_losses[0]  # the weights moved
    for a, b in zip(ddp_losses, one_losses):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7)
    wa = ckpt.load(tmp_path / "ddp" / "last.pt")["model"]
    wb = ckpt.load(tmp_path / "one" / "last.pt")["model"]
    assert ckpt.load(tmp_path / "ddp" / "last.pt")["extra"]["world_size"] == 2
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
