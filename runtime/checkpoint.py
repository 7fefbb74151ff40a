"""Checkpoints: model, optimizer, scheduler, step, RNG states; written atomically, read without unpickling code.

A checkpoint holds tensors, numbers, strings, lists, tuples and dicts only (numpy's RNG state is stored as a
tensor), so `load` reads it with `torch.load(weights_only=True)`: a checkpoint from anywhere cannot run code;
one that needs anything else is refused with one line saying what (docs/security.md).

A checkpoint is written to a temporary file in the same folder, flushed to
disk and renamed over the target (``os.replace``), so a run killed at any
moment leaves either the previous checkpoint or the new one, never half a file.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch


def rng_state() -> Dict[str, Any]:
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state_from(state["numpy"]))
    torch.set_rng_state(state["torch"].cpu())  # generator states are CPU byte tensors, whatever map_location did
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _numpy_state() -> Dict[str, Any]:
    """numpy's legacy global state without numpy objects: the MT19937 key as an int64 tensor."""
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {"bit_generator": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _numpy_state_from(saved: Dict[str, Any]) -> tuple:
    key = saved["key"].numpy().astype(np.uint32)
    return (saved["bit_generator"], key, saved["pos"], saved["has_gauss"], saved["gauss"])


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sweep_temporaries(folder: str | Path) -> List[Path]:
    """Remove the temporaries a checkpoint write killed mid-way left (`.<name>.<random>.tmp`); the run's one
    writer calls it before its first save, so none is another writer's."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    swept = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
             and p.name.count(".") >= 3 and p.is_file() and not p.is_symlink()]
    for path in swept:
        path.unlink(missing_ok=True)
    return swept


def load(path: str | Path, map_location: Any = "cpu") -> Dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file (a checkpoint is a file written by torch.save)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: refused: the checkpoint holds {_unsafe_global(exc)}, which a weights-only "
                         "load does not construct (a checkpoint from this project holds tensors, numbers, strings "
                         "and containers only)") from None
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise ValueError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {_first_line(exc)})") from None


def _unsafe_global(exc: Exception) -> str:
    match = re.search(r"(?:GLOBAL|global) ([\w.]+)", str(exc))
    return f"the Python object {match[1]}" if match else "Python objects"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def load_network(network: torch.nn.Module, path: str | Path, skippable: tuple = ()) -> List[str]:
    """A checkpoint's network weights into ``network``; entries under a prefix of ``skippable`` that the
    network lacks (a head this variant builds without) are skipped and returned. Any other mismatch (missing
    or unexpected names, other shapes: another config or variant's network) is one ValueError naming the file."""
    state = load(path)["model"]
    own = network.state_dict()
    unexpected = [k for k in state if k not in own]
    skipped = [k for k in unexpected if k.startswith(tuple(skippable))] if skippable else []
    problems = []
    missing = [k for k in own if k not in state]
    if missing:
        problems.append(f"missing {_few(missing)}")
    if len(skipped) != len(unexpected):
        problems.append(f"unexpected {_few([k for k in unexpected if k not in skipped])}")
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes:
        k = shapes[0]
        problems.append(f"{len(shapes)} of other shape ({k}: {list(state[k].shape)} here {list(own[k].shape)})")
    if problems:
        raise ValueError(f"{path}: the checkpoint does not fit this config's network ({'; '.join(problems)})")
    network.load_state_dict({k: v for k, v in state.items() if k not in skipped})
    return skipped


def _few(names: List[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under DDP and torch.compile wrappers."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def make_state(step: int, network: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
               scheduler: Any = None, scaler: Any = None, config: Optional[Dict[str, Any]] = None,
               extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {
        "step": int(step),
        "model": unwrap(network).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "config": config,
        "extra": extra or {},
    }
