"""What every task shares: the Task interface, its deployable description, and the generic training run.

A task binds one OM spec to the rest of a model's life (docs/new-task.md):

* ``spec`` (and the variant, from the config's ``om`` section);
* ``network(cfg, om, dataset)``: a module whose output dict holds the OM's
  prediction inputs by name;
* ``dataset(cfg, split, train=...)`` and ``collate(cfg, dataset, train=...)``:
  batches that hold the OM's truth inputs by name (role ``truth``) and the
  network's inputs (``image``);
* ``evaluator(cfg, val_ds, out_dir)``: ``(model, step) -> metrics`` (it also
  writes the visuals);
* ``deploy_spec(cfg, om_config)``: the :class:`DeploySpec` a deployed program
  needs (normalisation, padding rule, output names, metadata).

The runtime knows no task; a task knows no compiler internals.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from runtime import checkpoint as ckpt
from runtime.config import ConfigError
from runtime.model import OMModel
from runtime.om import OM, om_from_config
from runtime.trainer import Trainer, TrainSettings, seed_everything

Metrics = Dict[str, Any]
Evaluator = Callable[[OMModel, int], Metrics]

__all__ = ["DeploySpec", "Task", "data_root", "settings_from", "run_training", "model_from_checkpoint",
           "fresh_dir", "ensure_generated"]


@dataclasses.dataclass(frozen=True)
class DeploySpec:
    """The pre/post-processing a deployed program needs, around network + infer.

    ``mean``/``std`` normalise uint8 RGB images scaled to [0, 1] (the network's
    Normalize); the input is padded with ``pad_value`` (uint8) on the bottom and
    right to a multiple of ``stride``; ``output_names`` are the infer outputs
    the program returns; ``metadata`` holds what a user of the outputs needs
    (class names, thing ids, label divisor, joint names and skeleton, units).
    ``crop_outputs``: the network's maps are at image resolution and are cropped
    back to the unpadded image before decoding (panoptic); otherwise the padded
    maps are decoded whole, as the task's evaluation does (CenterNet: stride 4).
    """

    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    stride: int
    pad_value: int
    output_names: Tuple[str, ...]
    metadata: Mapping[str, Any]
    crop_outputs: bool = False

    def to_json(self) -> Dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "stride": self.stride, "pad_value": self.pad_value,
                "output_names": list(self.output_names), "crop_outputs": self.crop_outputs,
                "metadata": dict(self.metadata)}


def data_root(path: str | Path) -> Path:
    """A config path, relative to the working directory."""
    p = Path(path)
    return p if p.is_absolute() else Path.cwd() / p


def ensure_generated(data: Mapping[str, Any], write: Callable[[Path, int, int, Tuple[int, int], int], Any],
                     defaults: Mapping[str, Any], what: str) -> Path:
    """Generate a synthetic dataset under ``data.root`` with ``write(root, train, val, size, seed)`` unless it is
    there with the same settings (``generated.json``); under torchrun local rank 0 writes, the others wait."""
    root = data_root(data["root"])
    gen = {**defaults, **dict(data.get("generate", {}) or {})}
    size = gen.get("size", 128)
    size = (size, size) if isinstance(size, int) else tuple(size)
    stamp = {"train": int(gen["train"]), "val": int(gen["val"]), "size": list(size), "seed": int(gen.get("seed", 0))}
    marker = root / "generated.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return root
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:
        deadline = time.time() + 600
        while not (marker.exists() and json.loads(marker.read_text() or "null") == stamp):
            if time.time() > deadline:
                raise ConfigError(f"{marker}: local rank 0 did not finish generating the synthetic dataset")
            time.sleep(0.5)
        return root
    t = time.perf_counter()
    marker.unlink(missing_ok=True)
    write(root, stamp["train"], stamp["val"], size, stamp["seed"])
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp) + "\n")
    tmp.replace(marker)
    print(f"generated {what} ({stamp['train']} train + {stamp['val']} val, {size[0]}x{size[1]}) in {root} in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    return root


class Task:
    """One model's plumbing around its OM. Subclasses set the class attributes and the marked methods."""

    name: ClassVar[str]
    spec: ClassVar[str]                      # default OM spec
    default_targets: ClassVar[str] = "inline"
    default_out: ClassVar[str] = "runs/default"
    metric: ClassVar[str]                    # headline metric (a key of the evaluator's result, in %)
    metric_label: ClassVar[str]
    datasets: ClassVar[Tuple[str, ...]]      # data.dataset values
    data_keys: ClassVar[Tuple[str, ...]]     # data.* keys the task reads
    model_keys: ClassVar[Tuple[str, ...]]    # model.* keys
    eval_keys: ClassVar[Tuple[str, ...]]     # eval.* keys
    free_keys: ClassVar[Tuple[str, ...]] = ("om.config", "om.outputs", "om.truth", "model.overrides",
                                            "data.generate")

    # -- to implement ------------------------------------------------------------------------
    def dataset(self, cfg: Mapping[str, Any], split: str, *, train: bool):
        raise NotImplementedError

    def collate(self, cfg: Mapping[str, Any], dataset, *, train: bool) -> Callable:
        raise NotImplementedError

    def network(self, cfg: Mapping[str, Any], om: OM, om_config: Dict[str, Any], dataset) -> nn.Module:
        """The network; may complete ``om_config`` from the dataset (its number of classes)."""
        raise NotImplementedError

    def evaluator(self, cfg: Mapping[str, Any], val_ds, out_dir: Path) -> Evaluator:
        raise NotImplementedError

    def deploy_spec(self, cfg: Mapping[str, Any], om_config: Mapping[str, Any]) -> DeploySpec:
        raise NotImplementedError

    def synthetic(self, cfg: Mapping[str, Any]) -> Optional[Path]:
        """Generate the config's synthetic dataset if it names one (the demo's data); None otherwise."""
        return None

    # -- shared -------------------------------------------------------------------------------
    def model(self, cfg: Mapping[str, Any], dataset) -> OMModel:
        o = cfg["om"]
        om, om_config = om_from_config(o, self.spec)
        network = self.network(cfg, om, om_config, dataset)
        return OMModel(network, om, config=om_config, outputs=o.get("outputs"), truth=o.get("truth"),
                       network_inputs=o.get("network_inputs", ["image"]),
                       targets=o.get("targets", self.default_targets))

    def load_weights(self, network: nn.Module, path: str | Path) -> None:
        ckpt.load_network(network, path)

    def summary(self, metrics: Mapping[str, Any]) -> str:
        return f"{self.metric_label} {metrics[self.metric]:.1f} ({metrics.get('images', '?')} val images)"


def settings_from(cfg: Mapping[str, Any], default_out: str = "runs/default") -> TrainSettings:
    values = dict(cfg.get("train", {}) or {})
    values.setdefault("seed", int(cfg.get("seed", 0)))
    values.setdefault("out_dir", cfg.get("out_dir", default_out))
    return TrainSettings.from_dict(values)


def _set_threads(cfg: Mapping[str, Any]) -> None:
    local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun: the processes share the cores
    torch.set_num_threads(max(1, int(cfg.get("threads") or torch.get_num_threads()) // local_procs))


def split_dataset(task: Task, cfg: Mapping[str, Any], role: str, *, train: bool):
    """The dataset of data.<role>_split; one without a single image is an error naming its file (an empty
    training list cannot train, an empty validation list would report PQ nan with exit 0)."""
    split = cfg["data"].get(f"{role}_split", role)
    dataset = task.dataset(cfg, split, train=train)
    if len(dataset) == 0:
        source = getattr(dataset, "json_path", None) or Path(str(cfg["data"].get("root", "."))) / str(split)
        raise ConfigError(f"{source}: the {role} split {split!r} has no images"
                          + (" left after skip_empty" if train and cfg["data"].get("skip_empty", True) else ""))
    return dataset


def run_training(task: Task, cfg: Dict[str, Any], *, resume: Optional[str] = None, evaluate: bool = True,
                 on_step=None) -> Dict[str, Any]:
    """Train ``task`` on ``cfg`` through runtime.Trainer (checkpoints, resume, logging, DDP), then evaluate."""
    seed_everything(int(cfg.get("seed", 0)))
    settings = settings_from(cfg, task.default_out)
    _set_threads(cfg)
    train_ds = split_dataset(task, cfg, "train", train=True)
    model = task.model(cfg, train_ds)
    evaluator = None
    if evaluate and (cfg.get("eval", {}) or {}).get("enabled", True):
        val_ds = split_dataset(task, cfg, "val", train=False)
        evaluator = task.evaluator(cfg, val_ds, Path(settings.out_dir))
    trainer = Trainer(model, train_ds, task.collate(cfg, train_ds, train=True), settings, evaluate=evaluator,
                      config=cfg, on_step=on_step)
    try:
        result = trainer.fit(resume=resume)
    finally:
        trainer.close()
    result["model"] = model
    result["rank"] = trainer.dist.rank
    return result


def model_from_checkpoint(task: Task, cfg: Dict[str, Any], path: Optional[str | Path], val_ds=None) -> OMModel:
    """The config's model with a checkpoint's weights; without one (an oracle variant's upper bound) the network
    stays untrained, with a warning unless the variant is an oracle."""
    if val_ds is None:
        val_ds = split_dataset(task, cfg, "val", train=False)
    model = task.model(cfg, val_ds)
    if path is not None:
        task.load_weights(model.network, path)
    elif not str(cfg["om"].get("variant", "base")).startswith("oracle"):
        warnings.warn("no --checkpoint: evaluating an untrained network", stacklevel=2)
    return model.eval()


RUN_FILES = ("last.pt", "metrics.jsonl", "summary.json", "demo.json", "eval.json", "visuals", "model.ts")


def fresh_dir(path: str | Path, *, reuse: bool = False) -> Path:
    """``path`` if it holds no earlier run (none of RUN_FILES; a dataset folder inside does not count), or ``reuse``: --overwrite, --resume); otherwise the first free numbered
    sibling ``path-2``, ``path-3``, ... (the command prints where it wrote at the end) so that a run never overwrites an earlier one's files. Under torchrun
    (WORLD_SIZE > 1) every process must agree without talking, so there a used folder is refused instead."""
    path = Path(path)

    def free(p: Path) -> bool:
        return not (p.exists() and (not p.is_dir() or any((p / name).exists() for name in RUN_FILES)))

    if reuse or free(path):
        return path
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(f"{path} holds an earlier run: pass --overwrite, --resume auto or another --out")
    i = 2
    while not free(path.with_name(f"{path.name}-{i}")):
        i += 1
    return path.with_name(f"{path.name}-{i}")


def items(metrics: Mapping[str, Any], digits: int = 3) -> Dict[str, Any]:
    return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in metrics.items()}
