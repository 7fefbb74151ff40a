"""The training loop, generic over OMs: a network + OM entrypoints (runtime.model.OMModel).

Determinism: sample order is a function of (seed, epoch) and each step reseeds
torch with (seed, step, rank), so a run resumed from a checkpoint takes the
same steps as one that was never interrupted. Losses must be finite: a
non-finite loss stops the run before the update, the last good checkpoint stays.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from . import checkpoint as ckpt
from .distributed import DistInfo, all_reduce_mean, all_reduce_sum, barrier, cleanup, setup
from .metrics import MetricsLogger
from .model import OMModel, TargetsCollate
from .progress import bar

__all__ = ["TrainSettings", "Trainer", "NonFiniteLoss", "EpochBatchSampler", "seed_everything", "one_line_error",
           "to_device"]


class NonFiniteLoss(RuntimeError):
    pass


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, rank: int) -> int:
    return (int(seed) * 1_000_003 + int(step) * 7919 + int(rank) * 104_729) % (2**63 - 1)


def one_line_error(exc: BaseException) -> str:
    """A one-line message; for an error re-raised from a data-loader worker, the original one."""
    text = str(exc)
    if "Original Traceback" in text:
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1].strip()
        # "package.module.ErrorType: message" -> "message"
        head, sep, rest = last.partition(": ")
        if sep and " " not in head:
            return rest
        return last
    return " ".join(text.split("\n")[0:1]) or type(exc).__name__


@dataclasses.dataclass
class TrainSettings:
    steps: int = 100
    batch_size: int = 8                  # global batch (all processes together)
    optimizer: str = "adam"              # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: Sequence[float] = (0.9, 0.999)
    schedule: str = "poly"               # poly | cosine | constant
    poly_power: float = 0.9
    warmup_steps: int = 0
    amp: str = "none"                    # none | bf16 | fp16 (fp16: CUDA only)
    compile: bool = False                # torch.compile the network
    grad_clip: Optional[float] = None
    workers: int = 0
    log_every: int = 10
    ckpt_every: int = 0                  # 0: only at the end
    out_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = True
    progress: bool = True
    drop_last: bool = True
    channels_last: bool = False          # network weights (and so activations) in channels-last layout
    find_unused_parameters: bool = False  # DDP: allow parameters without gradient (a head the variant never
                                          # reads, e.g. an oracle's); costs a graph traversal per step
    profile: bool = False                # CUDA: synchronise around the phases so timings are exact (slower)
    time_budget_s: Optional[float] = None  # stop when training took this long; the lr schedule follows
                                           # max(step / steps, time / budget), so it still anneals to the end

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown train settings {unknown}; known: {sorted(known)}")
        return cls(**values)


class EpochBatchSampler(torch.utils.data.Sampler):
    """Global batches from a permutation seeded by (seed, epoch); rank r takes its slice of each.

    One process with batch B sees exactly the samples that P processes with
    B / P each see together, in the same order.
    """

    def __init__(self, n: int, global_batch: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True, skip: int = 0) -> None:
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world} processes")
        if n < global_batch:
            raise ValueError(f"the dataset has {n} samples, fewer than one batch of {global_batch}")
        self.n, self.batch, self.seed, self.epoch = n, global_batch, seed, epoch
        self.rank, self.world, self.shuffle, self.skip = rank, world, shuffle, skip

    def __len__(self) -> int:
        return self.n // self.batch - self.skip

    def __iter__(self) -> Iterator[List[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        local = self.batch // self.world
        for b in range(self.skip, self.n // self.batch):
            chunk = order[b * self.batch:(b + 1) * self.batch]
            yield chunk[self.rank * local:(self.rank + 1) * local]


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], Tensor):
        return type(value)(to_device(v, device) for v in value)
    return value


def _autocast(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def build_optimizer(params, s: TrainSettings) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=tuple(s.betas), weight_decay=s.weight_decay)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, betas=tuple(s.betas), weight_decay=s.weight_decay)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    raise ValueError(f"unknown optimizer {s.optimizer!r} (adam, adamw, sgd)")


def lr_factor(step: int, s: TrainSettings, time_progress: float = 0.0) -> float:
    if s.warmup_steps and step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    t = min(max(min(step, s.steps) / max(1, s.steps), time_progress), 1.0)
    if s.schedule == "poly":
        return (1.0 - t) ** s.poly_power
    if s.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if s.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {s.schedule!r} (poly, cosine, constant)")


class Trainer:
    """``Trainer(model, dataset, collate, settings).fit()``; see docs/training.md."""

    def __init__(self, model: OMModel, dataset: torch.utils.data.Dataset, collate: Callable,
                 settings: TrainSettings, *, evaluate: Optional[Callable[[OMModel, int], Dict[str, Any]]] = None,
                 config: Optional[Dict[str, Any]] = None, on_step: Optional[Callable[[int, Dict[str, float]], None]] = None,
                 dist: Optional[DistInfo] = None) -> None:
        self.s = settings
        self.dist = dist or setup(settings.device)
        self.device = self.dist.device
        if settings.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be none, bf16 or fp16, got {settings.amp!r}")
        if settings.amp == "fp16" and self.device.type != "cuda":
            raise ValueError("amp: fp16 needs CUDA (use bf16 on the CPU)")
        self.model = model.to(self.device)
        self.dataset = dataset
        self.collate = collate
        if model.targets_mode == "loader":
            self.collate = TargetsCollate(collate, model.om, model.om_config, model.truth_map)
        self.evaluate = evaluate
        self.config = config
        self.on_step = on_step
        self.out_dir = Path(settings.out_dir)
        if self.dist.is_main:
            ckpt.sweep_temporaries(self.out_dir)  # a write killed by an earlier run's kill -9
        self.optimizer = build_optimizer(model.network.parameters(), settings)
        self.elapsed_before = 0.0     # training seconds of the runs this one resumed
        self._t_fit: Optional[float] = None
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, settings, self.time_progress()))
        self.scaler = torch.amp.GradScaler("cuda") if settings.amp == "fp16" else None
        if settings.channels_last:
            model.network.to(memory_format=torch.channels_last)
        net: torch.nn.Module = model.network
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids,
                                                            find_unused_parameters=settings.find_unused_parameters)
        if settings.compile:
            net = torch.compile(net)
        self.net = net
        self.step = 0
        self.logger = MetricsLogger(self.out_dir, enabled=self.dist.is_main, tensorboard=settings.tensorboard)
        self.timings: Dict[str, float] = {"data": 0.0, "network": 0.0, "om": 0.0, "backward": 0.0, "steps": 0}

    # -- time budget ----------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t_fit if self._t_fit is not None else 0.0)

    def time_progress(self) -> float:
        budget = self.s.time_budget_s
        return self.elapsed() / budget if budget else 0.0

    def out_of_time(self) -> bool:
        if not self.s.time_budget_s:
            return False
        flag = torch.tensor([1.0 if self.elapsed() >= self.s.time_budget_s else 0.0])
        return float(all_reduce_sum(flag, self.dist)) > 0  # one rank out of time: all stop

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def last_checkpoint(self) -> Path:
        return self.out_dir / "last.pt"

    def save(self, path: Optional[Path] = None) -> Optional[Path]:
        path = path or self.last_checkpoint
        if self.dist.is_main:
            state = ckpt.make_state(self.step, self.model.network, self.optimizer, self.scheduler, self.scaler,
                                    self.config, {"world_size": self.dist.world_size, "elapsed": self.elapsed(),
                                                  "om": {"config": _plain(getattr(self.model, "om_config", {}))}})
            ckpt.save_atomic(state, path)
        barrier(self.dist)
        return path

    def resume(self, path: str | Path) -> int:
        # on the CPU: the RNG states must stay CPU tensors; load_state_dict moves the rest to the parameters' device
        state = ckpt.load(path, map_location="cpu")
        self.model.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.elapsed_before = float(state.get("extra", {}).get("elapsed", 0.0))
        return self.step

    # -- data -----------------------------------------------------------------------------------
    def batches(self, start_step: int) -> Iterator[Dict[str, Any]]:
        n = len(self.dataset)  # type: ignore[arg-type]
        per_epoch = n // self.s.batch_size
        if per_epoch == 0:
            raise ValueError(f"the dataset has {n} samples, fewer than one batch of {self.s.batch_size}")
        epoch, skip = divmod(start_step, per_epoch)
        while True:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            sampler = EpochBatchSampler(n, self.s.batch_size, seed=self.s.seed, epoch=epoch, rank=self.dist.rank,
                                        world=self.dist.world_size, skip=skip)
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_sampler=sampler, collate_fn=self.collate, num_workers=self.s.workers,
                pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(self.s.seed + epoch))
            yield from loader
            epoch, skip = epoch + 1, 0

    # -- the loop -------------------------------------------------------------------------------
    def train_step(self, batch: Mapping[str, Any]) -> Dict[str, Tensor]:
        sync = torch.cuda.synchronize if self.device.type == "cuda" and self.s.profile else (lambda: None)
        t0 = time.perf_counter()
        with _autocast(self.device, self.s.amp):
            net_out = self.net(*self.model.network_args(batch))
        t1 = time.perf_counter()
        with torch.autocast(device_type=self.device.type, enabled=False):
            losses = self.model.losses_from(net_out, batch)
        sync()
        t2 = time.perf_counter()
        loss = losses[self.model.loss_key]
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.dist.enabled:
            finite = all_reduce_sum(finite.reshape(1), self.dist).reshape(()) / self.dist.world_size
        if float(finite) < 1.0:
            values = {k: float(all_reduce_mean(v.detach().float(), self.dist)) for k, v in losses.items()}
            raise NonFiniteLoss(f"non-finite loss at step {self.step + 1}: "
                                + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                                + f"; stopped, last good checkpoint: {self.last_checkpoint if self.last_checkpoint.exists() else 'none'}")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.s.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.network.parameters(), self.s.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.s.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.network.parameters(), self.s.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        sync()
        t3 = time.perf_counter()
        self.timings["network"] += t1 - t0
        self.timings["om"] += t2 - t1
        self.timings["backward"] += t3 - t2
        self.timings["steps"] += 1
        return {k: v.detach() for k, v in losses.items()}

    def fit(self, resume: Optional[str | Path] = None) -> Dict[str, Any]:
        s = self.s
        if resume == "auto":
            resume = self.last_checkpoint if self.last_checkpoint.exists() else None
        if resume:
            self.resume(resume)
        elif self.step == 0:
            self.logger.reset()
        self.model.train()
        start = self.step
        if self.dist.is_main and s.progress:  # beside the progress bar; quiet runs keep stderr for errors
            print(self.logger.where(s.tensorboard), file=sys.stderr)
        progress = None
        if s.progress and self.dist.is_main:
            progress = bar(what="train", unit="step", total=s.steps, initial=start, enabled=True,
                           leave=True)
        history: List[Dict[str, float]] = []
        window: Dict[str, float] = {}
        count = 0
        t_start = time.perf_counter()
        self._t_fit = t_start
        t_log = t_start
        stopped_by_time = False
        images = 0
        data = self.batches(start)

        def flush() -> None:
            nonlocal window, count, images, t_log
            means = {k: float(all_reduce_mean(torch.tensor(v / count), self.dist)) for k, v in window.items()}
            now = time.perf_counter()
            means["lr"] = self.optimizer.param_groups[0]["lr"]
            means["images_per_s"] = images / max(now - t_log, 1e-9)
            self.logger.log(self.step, means)
            history.append({"step": self.step, **means})
            if progress is not None:
                progress.set_postfix({k: f"{v:.3g}" for k, v in means.items() if k != "images_per_s"})
            window, count, images, t_log = {}, 0, 0, now

        try:
            while self.step < s.steps:
                if self.out_of_time():
                    stopped_by_time = True
                    if self.dist.is_main:
                        print(f"time budget of {s.time_budget_s:g} s reached at step {self.step} of {s.steps}",
                              file=sys.stderr)
                    break
                torch.manual_seed(step_seed(s.seed, self.step, self.dist.rank))
                t = time.perf_counter()
                batch = to_device(next(data), self.device)
                self.timings["data"] += time.perf_counter() - t
                losses = self.train_step(batch)
                self.step += 1
                images += s.batch_size
                for k, v in losses.items():
                    window[k] = window.get(k, 0.0) + float(v)
                count += 1
                if self.on_step is not None:
                    self.on_step(self.step, {k: float(v) for k, v in losses.items()})
                if self.step % max(1, s.log_every) == 0 or self.step == s.steps:
                    flush()
                if progress is not None:
                    progress.update(1)
                if s.ckpt_every and self.step % s.ckpt_every == 0 and self.step < s.steps:
                    self.save()
            if count:
                flush()
            self.save()
        finally:
            if progress is not None:
                progress.close()
        elapsed = time.perf_counter() - t_start
        result: Dict[str, Any] = {"step": self.step, "seconds": elapsed, "history": history,
                                  "checkpoint": str(self.last_checkpoint), "stopped_by_time": stopped_by_time,
                                  "timings": dict(self.timings)}
        busy = sum(self.timings[k] for k in ("data", "network", "om", "backward"))
        if self.timings["steps"] and busy > 0:
            self.logger.log(self.step, {f"{k}_share": self.timings[k] / busy for k in ("data", "network", "om", "backward")},
                            kind="timing")
        if self.evaluate is not None:
            result["eval"] = self.run_evaluation()
        if self.dist.is_main:
            result["curves"] = self.write_curves()
        return result

    def write_curves(self) -> Optional[str]:
        """``curves.png`` from the run's metrics.jsonl (runtime.plots); a plotting failure after a finished run is
        one line on stderr, not a lost run."""
        from runtime.plots import read_metrics, write_curves

        try:
            path = write_curves(self.out_dir / "curves.png", read_metrics(self.logger.path), title=self.out_dir.name)
        except Exception as exc:  # noqa: BLE001 - the checkpoint and metrics are written; say why the plot is not
            print(f"curves.png not written: {one_line_error(exc)}", file=sys.stderr)
            return None
        return str(path) if path else None

    def run_evaluation(self) -> Dict[str, Any]:
        assert self.evaluate is not None
        self.model.eval()
        metrics = self.evaluate(self.model, self.step) if self.dist.is_main else {}
        barrier(self.dist)
        self.model.train()
        if self.dist.is_main and metrics:
            self.logger.log(self.step, {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, kind="eval")
        return metrics

    def close(self) -> None:
        self.logger.close()
        cleanup(self.dist)


def _plain(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The OM config the model was built with (completed from the dataset), as plain values a weights_only
    checkpoint load accepts and export reads back."""
    def plain(v: Any) -> Any:
        if isinstance(v, (bool, int, float, str)) or v is None:
            return v
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        return str(v)

    return {str(k): plain(v) for k, v in dict(config).items()}
