"""CenterNet under 2-process gloo DDP (as torchrun runs it), for a variant that reads every head and for
no-offset, whose network is built without the offset head (DDP fails on parameters that get no gradient)."""
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


VARIANTS = [  # (variant, has an offset head, train settings)
    ("base", True, {}), ("no-offset", False, {}),
    ("oracle-offset", True, {"find_unused_parameters": True}),  # its offset head gets no gradient
]


def _worker(rank: int, ports: list, root: str, out: str) -> None:
    """Every variant in turn in one pair of processes (each its own process group and port): the processes and
    their imports are paid once."""
    sys.path[:0] = [str(HERE), str(HERE.parents[1])]
    torch.set_num_threads(1)
    from test_centernet_training import tiny_config
    from train import centernet as C

    for (variant, _, train), port in zip(VARIANTS, ports):
        os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        run = Path(out, variant)
        cfg = tiny_config(root, str(run), om={"variant": variant}, train={"steps": 2, "device": "cpu", **train})
        result = C.run_training(cfg, evaluate=False)
        if result["rank"] == 0:
            offset = any("offset_head" in k for k in result["model"].network.state_dict())
            (run / "result.json").write_text(json.dumps({"step": result["step"], "offset": offset}))


def test_two_process_ddp_trains_every_variant(tmp_path):
    from train.data.synthetic import write_dataset

    write_dataset(tmp_path / "data", 8, 2, (64, 64), seed=4, crowd_prob=0.0)
    out = tmp_path / "run"
    ports = [_free_port() for _ in VARIANTS]
    mp.spawn(_worker, args=(ports, str(tmp_path / "data"), str(out)), nprocs=2, join=True)
    for variant, has_offset_head, _ in VARIANTS:
        result = json.loads((out / variant / "result.json").read_text())
        assert result == {"step": 2, "offset": has_offset_head}, variant


def test_base_checkpoint_evaluates_with_no_offset_skipping_the_head(tmp_path, capsys):
    import yaml

    from test_centernet_training import tiny_config
    from train import centernet as C
    from train.data.synthetic import write_dataset

    write_dataset(tmp_path / "data", 4, 2, (64, 64), seed=4, crowd_prob=0.0)
    cfg = tiny_config(tmp_path / "data", tmp_path / "run", train={"steps": 1})
    C.run_training(cfg, evaluate=False)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    checkpoint = str(tmp_path / "run" / "last.pt")
    with pytest.warns(UserWarning, match="offset head is not used"):
        assert C.main(["eval", str(tmp_path / "cfg.yaml"), "--checkpoint", checkpoint,
                       "--set", "om.variant=no-offset"]) == 0
    assert '"images": 2' in capsys.readouterr().out
    # a checkpoint of another network is one line, naming it
    assert C.main(["eval", str(tmp_path / "cfg.yaml"), "--checkpoint", checkpoint,
                   "--set", "model.head_channels=8"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and checkpoint in err and "does not fit" in err and "other shape" in err
