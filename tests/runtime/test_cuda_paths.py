"""Regression tests for the CUDA paths of training (scripts/gpu_check.sh, docs/training.md "CUDA training check").

The CUDA tests are skipped without a GPU; scripts/gpu_check.sh runs this file on the GPU machine. The first test
runs everywhere: a machine without the compiler's libcst (the GPU machine) trains from generated/ as it is.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime import checkpoint as ckpt
from runtime.distributed import DistInfo, all_reduce_mean, all_reduce_sum
from runtime.om import PROJECT_ROOT

from runtime_toy import toy_trainer

HERE = Path(__file__).resolve().parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

NO_COMPILER = r"""
import argparse, warnings
from runtime.cli import run_command
from runtime.om import load_om
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    om = load_om("specs/panoptic.yaml", "synthetic")  # compile: true, but the compiler cannot be imported
assert om.name == "panoptic" and "train" in om.entrypoints, om
assert any("cannot be imported" in str(w.message) for w in caught), [str(w.message) for w in caught]
p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="command")
sub.add_parser("ok").set_defaults(run=lambda args: 0)
sub.add_parser("bad").set_defaults(run=lambda args: (_ for _ in ()).throw(ValueError("a user error")))
print(run_command(p, ["ok"]), run_command(p, ["bad"]))
"""


def test_training_commands_work_without_the_compiler(tmp_path):
    (tmp_path / "libcst.py").write_text("raise ImportError('libcst is not installed (test)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)])}
    proc = subprocess.run([sys.executable, "-c", NO_COMPILER], capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "1"] and "error: a user error" in proc.stderr


@cuda
def test_resume_on_cuda(tmp_path):
    info = DistInfo(device=torch.device("cuda", 0))
    full = toy_trainer(tmp_path / "full", steps=6, ckpt_every=2, dist=info)
    full.fit()
    full.close()

    def stop(step, losses):
        if step == 3:
            raise KeyboardInterrupt  # killed after the checkpoint of step 2

    part = toy_trainer(tmp_path / "part", steps=6, ckpt_every=2, dist=info, on_step=stop)
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    part.close()
    assert ckpt.load(tmp_path / "part" / "last.pt")["step"] == 2
    resumed = toy_trainer(tmp_path / "part", steps=6, ckpt_every=2, dist=info)
    resumed.fit(resume="auto")  # RNG states of a CUDA run load (they were mapped to CUDA before the fix)
    resumed.close()
    assert resumed.step == 6
    a, b = ckpt.load(tmp_path / "full" / "last.pt")["model"], ckpt.load(tmp_path / "part" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@cuda
def test_all_reduce_of_cpu_scalars_under_nccl():
    import torch.distributed as dist

    if not dist.is_nccl_available():
        pytest.skip("no nccl")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        info = DistInfo(0, 2, 0, torch.device("cuda", 0))  # "enabled"; the group itself has one process
        total = all_reduce_sum(torch.tensor([3.0]), info)  # the loop reduces CPU scalars (logged means, time flag)
        assert total.device.type == "cpu" and float(total) == 3.0
        assert float(all_reduce_mean(torch.tensor(3.0), info)) == 1.5
        on_gpu = all_reduce_sum(torch.ones(2, device="cuda"), info)
        assert on_gpu.device.type == "cuda" and on_gpu.tolist() == [1.0, 1.0]
    finally:
        dist.destroy_process_group()

