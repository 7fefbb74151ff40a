"""torch.distributed helpers: one code path for 1 process, torchrun on one node, or many nodes.

``torchrun --nproc_per_node G [--nnodes M ...] -m train train CONFIG`` sets
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; :func:`setup`
reads them and initialises the process group (nccl on CUDA, gloo on the CPU).
Without them, training runs in one process and nothing is initialised.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else the CPU; a CUDA device without an index gets ``local_rank``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def setup(device: str = "auto", backend: Optional[str] = None) -> DistInfo:
    """Initialise from the torchrun environment (if any) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    here = False
    if world > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
        here = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world, local_rank, dev, here)


def cleanup(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def _all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """A summed copy of ``t`` on ``t``'s device; the reduction runs on ``info.device`` (nccl reduces CUDA
    tensors only, and the loop reduces CPU scalars: logged means, the time-budget flag)."""
    work = t.detach().to(info.device, copy=True)
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return t
    return _all_reduce_sum(t, info) / info.world_size


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return t
    return _all_reduce_sum(t, info)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
