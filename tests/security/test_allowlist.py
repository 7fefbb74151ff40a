"""The purity allow-list (omgen/purity_allowlist.json) is what the installed torch gives, and nothing on it
reaches the world in one more attribute hop."""
from __future__ import annotations

import builtins
import ctypes
import io
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ALLOWLIST = json.loads((ROOT / "omgen" / "purity_allowlist.json").read_text(encoding="utf-8"))
ESCAPES = {id(f) for f in (builtins.open, builtins.eval, builtins.exec, builtins.compile, builtins.__import__,
                           builtins.getattr, builtins.setattr, builtins.delattr, builtins.globals, builtins.vars,
                           builtins.locals, builtins.breakpoint, builtins.input, os.system, os.popen, os.open,
                           subprocess.run, subprocess.Popen, ctypes.CDLL, torch.save, torch.load, torch.from_file,
                           shutil.rmtree, io.open)}
WORLD_MODULES = ("os", "sys", "subprocess", "ctypes", "io", "pathlib", "shutil", "posix", "socket", "importlib",
                 "pickle", "builtins", "numpy")


def _resolve(dotted: str):
    head, *rest = dotted.split(".")
    value = {"torch": torch, "math": math}[head]
    for part in rest:
        value = getattr(value, part)
    return value


def _reaches_world(value) -> str:
    """Why `value` (the result of one more hop) reaches the world ('' when it does not)."""
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    if id(value) in ESCAPES:
        return f"{value!r}"
    module = getattr(value, "__module__", None) or ""
    if isinstance(module, str) and module.split(".")[0] in WORLD_MODULES and callable(value):
        return f"{value!r} from {module}"
    if isinstance(value, type) and any(hasattr(value, name) for name in ("from_file", "from_buffer", "_new_shared")):
        return f"the class {value.__name__}, which reads files or shared memory"
    return ""


def test_the_shipped_list_is_what_the_installed_torch_gives():
    if ALLOWLIST["torch_version"] != torch.__version__.split("+")[0]:
        pytest.skip(f"the list is for torch {ALLOWLIST['torch_version']}, {torch.__version__} is installed")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "derive_allowlist.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_member_exists_and_none_is_a_module():
    for dotted in ALLOWLIST["members"]:
        value = _resolve(dotted)
        assert not isinstance(value, types.ModuleType), dotted
    for prefix in ALLOWLIST["module_prefixes"]:
        assert isinstance(_resolve(prefix), types.ModuleType), prefix


def test_no_name_of_the_list_is_private_or_reaches_attributes_by_string():
    names = ALLOWLIST["members"] + ALLOWLIST["value_attributes"]
    assert not [n for n in names if any(part.startswith("_") for part in n.split("."))]
    for escape in ("format", "format_map", "numpy", "storage", "untyped_storage", "data_ptr", "register_hook",
                   "set_", "apply_", "map_", "tofile", "data", "storage_type"):
        assert escape not in ALLOWLIST["value_attributes"], escape
    for escape in ("torch.save", "torch.load", "torch.from_file", "torch.from_numpy", "torch.frombuffer"):
        assert escape not in ALLOWLIST["members"], escape
    assert not {"torch.ops", "torch.hub", "torch.utils", "torch.library", "torch.jit.load"} & set(
        ALLOWLIST["module_prefixes"] + ALLOWLIST["members"])


def _values():
    """Every member, and the values a body computes: tensors of each kind, sizes, dtypes, devices, containers."""
    yield from ((dotted, _resolve(dotted)) for dotted in ALLOWLIST["members"])
    samples = {
        "float tensor": torch.rand(2, 3, requires_grad=True), "long tensor": torch.arange(4), "bool tensor":
        torch.ones(2, dtype=torch.bool), "size": torch.Size([2, 3]), "dtype": torch.float32,
        "device": torch.device("cpu"), "finfo": torch.finfo(torch.float32), "iinfo": torch.iinfo(torch.int32),
        "list": [1], "dict": {"a": 1}, "tuple": (1,), "str": "s", "int": 1, "float": 1.0,
        "function": lambda x: x, "grad": (torch.rand(2, requires_grad=True) * 2).grad_fn,
    }
    yield from samples.items()


def test_one_more_hop_from_anything_a_body_holds_reaches_no_file_process_or_interpreter():
    attributes = ALLOWLIST["value_attributes"]
    found = []
    for where, value in _values():
        for name in attributes:
            try:
                hop = getattr(value, name)
            except Exception:  # noqa: BLE001 - a property may refuse this value; it reaches nothing then
                continue
            why = _reaches_world(hop)
            if why:
                found.append(f"{where}.{name} -> {why}")
    assert not found, "\n".join(found[:20])


def test_the_walk_finds_an_escape_when_one_is_listed():
    """The walk above is not vacuous: a storage class (reads files), a module (reaches anything) and os.system
    are reported."""
    import torch.nn.functional as F
    for hop in (torch.rand(1).storage_type(), getattr(F, "torch"), os.system, pathlib.Path.read_text):
        assert _reaches_world(hop), hop
