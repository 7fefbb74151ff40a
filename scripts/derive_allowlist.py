"""Derive omgen/purity_allowlist.json from the installed torch's own registries.

    python scripts/derive_allowlist.py           # write the list for the installed torch
    python scripts/derive_allowlist.py --check   # exit 1 when the shipped list differs (CI)

The compiler never imports torch, so what a body may call is data, made here:
the operations torch declares overridable (`torch.overrides`: the tensor math
of torch, torch.nn.functional, linalg, fft, special and every Tensor method
and property), the factories and type queries torch lists as ignored for
overriding but that only build values, dtype/layout constants, `math`, and
the TorchScript/tracing queries the specs need. Taken out, with the reason
shown to the user: whatever reaches files, native code, numpy, the
interpreter, hooks, storages, global state or raw memory. A member is never a
module: modules are the roots a body starts from (`torch`, `F`, `math`) and
can reach anything.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
import torch.overrides as overrides

OUT = Path(__file__).resolve().parents[1] / "omgen" / "purity_allowlist.json"

# the names a body starts from (omgen/analyse.py ALLOWED_GLOBALS that are modules or types)
GLOBALS = {"torch": "torch", "F": "torch.nn.functional", "math": "math", "Tensor": "torch.Tensor"}
NAMESPACES = {"torch": torch, "torch.nn.functional": F, "torch.linalg": torch.linalg, "torch.fft": torch.fft,
              "torch.special": torch.special}

# torch.overrides' ignored functions that only build or describe values (factories, type queries)
IGNORED_BUT_PURE = {
    "arange", "as_strided", "as_tensor", "can_cast", "empty", "empty_like", "empty_strided", "eye", "finfo",
    "full", "iinfo", "is_grad_enabled", "is_inference_mode_enabled", "is_tensor", "linspace", "logspace",
    "ones", "promote_types", "result_type", "scalar_tensor", "tensor", "tril_indices", "triu_indices",
    "zeros", "device", "dtype", "layout", "memory_format", "broadcast_shapes", "get_default_dtype",
    "rand", "rand_like", "randint", "randint_like", "randn", "randn_like", "randperm", "normal",
    "bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window", "vander",
    "no_grad", "enable_grad",
}
# TorchScript and tracing queries a body may ask (they branch, they do not act)
HELPERS = {"torch.jit.annotate", "torch.jit.is_scripting", "torch.jit.is_tracing", "torch.compiler.is_compiling",
           "torch.compiler.is_exporting", "torch.Tensor", "torch.Size"}

# denied with the reason the user reads; a name here is removed even if a registry lists it
DENIED = {
    "torch.save": "writes a file", "torch.load": "reads a file and unpickles it",
    "torch.from_file": "reads a file", "torch.frombuffer": "reads raw memory", "torch.from_numpy": "leaves torch for numpy",
    "torch.asarray": "reads any buffer-protocol object", "torch.hub": "downloads and runs code",
    "torch.ops": "loads and calls native libraries", "torch.utils": "reaches file, process and native-code helpers",
    "torch.library": "registers native operators", "torch.classes": "loads native classes",
    "torch.jit": "compiles and loads programs (only annotate, is_scripting and is_tracing are allowed)",
    "torch.compile": "compiles code", "torch.export": "saves and loads programs", "torch.cuda": "controls devices",
    "torch.backends": "changes global settings", "torch.distributed": "talks to other processes",
    "torch.multiprocessing": "starts processes", "torch.serialization": "reads and writes files",
    "torch.package": "loads code", "torch.onnx": "writes files", "torch.fx": "builds and runs code",
    "torch.autograd": "hooks into the backward pass", "torch.random": "changes the global random state",
    "torch.manual_seed": "changes the global random state", "torch.seed": "changes the global random state",
    "torch.set_rng_state": "changes the global random state", "torch.fork": "runs a function asynchronously",
    "torch.wait": "waits on asynchronous work", "torch.cond": "calls functions given as values",
    "torch.vmap": "calls functions given as values", "torch.func": "calls functions given as values",
    "torch.import_ir_module": "loads a program", "torch.import_ir_module_from_buffer": "loads a program",
    "torch.parse_ir": "builds a program", "torch.set_printoptions": "changes global settings",
    "numpy": "leaves torch for numpy (and its file writers)", "tofile": "writes a file",
    "storage": "reaches raw storage", "untyped_storage": "reaches raw storage", "data_ptr": "reaches raw memory",
    "const_data_ptr": "reaches raw memory", "mutable_data_ptr": "reaches raw memory",
    "storage_type": "reaches storage classes (which read files)", "is_set_to": "compares raw storages",
    "set_": "rebinds a tensor's storage", "data": "bypasses autograd", "apply_": "calls a Python function per element",
    "map_": "calls a Python function per element", "map2_": "calls a Python function per element",
    "register_hook": "runs a function during backward",
    "register_post_accumulate_grad_hook": "runs a function during backward",
    "share_memory_": "moves storage to shared memory", "backward": "runs the backward pass (a training side effect)",
    "retain_grad": "changes what autograd keeps", "record_stream": "controls device streams",
    "pin_memory": "controls host memory", "module_load": "rebinds parameters", "grad_fn": "reaches autograd's graph",
    "as_subclass": "builds tensors of any class", "new": "builds tensors of any class",
    "to_dlpack": "exports raw memory", "format": "reaches attributes through a format string",
    "format_map": "reaches attributes through a format string",
}
DENIED_PREFIXES = ("set_", "use_", "autocast", "clear_autocast", "init_num", "mkldnn", "cudnn", "miopen", "sym_",
                   "is_autocast", "get_autocast", "import_", "parse_", "merge_type", "unify_type")
# attributes of values that are not tensors: containers, dtypes, finfo/iinfo, devices, sizes
NON_TENSOR_ATTRIBUTES = {
    "append", "extend", "insert", "pop", "index", "count", "items", "keys", "values", "get", "setdefault",
    "update", "eps", "max", "min", "tiny", "bits", "resolution", "smallest_normal", "is_floating_point",
    "is_signed", "is_complex", "itemsize", "type", "numel",
}


def _public(name: str) -> bool:
    return not name.startswith("_")


def _denied(dotted: str) -> bool:
    leaf = dotted.rsplit(".", 1)[-1]
    if dotted in DENIED or any(dotted.startswith(d + ".") for d in DENIED if d.startswith("torch.")):
        return True
    return dotted.startswith("torch.") and dotted.count(".") == 1 and leaf.startswith(DENIED_PREFIXES)


def _members() -> set[str]:
    overridable = overrides.get_overridable_functions()
    pure = {id(f) for namespace in (torch, torch.functional, F, torch.linalg, torch.fft, torch.special)
            for f in overridable.get(namespace, [])}
    ignored_ok = {id(getattr(torch, n)) for n in IGNORED_BUT_PURE if hasattr(torch, n)}
    found = set()
    for path, namespace in NAMESPACES.items():
        for name in dir(namespace):
            if not _public(name):
                continue
            value = getattr(namespace, name)
            if isinstance(value, types.ModuleType):
                continue
            constant = isinstance(value, (torch.dtype, torch.layout, torch.memory_format, float, bool)) \
                and not isinstance(value, type)
            if id(value) in pure or id(value) in ignored_ok or constant:
                found.add(f"{path}.{name}")
            elif path == "torch.nn.functional" and callable(value) and getattr(value, "__module__", "") == F.__name__:
                found.add(f"{path}.{name}")  # F's own functions (hardswish, upsample...) not in the registry
    for name in dir(math):
        if _public(name):
            found.add(f"math.{name}")
    return {m for m in found if not _denied(m)} | HELPERS


def _value_attributes() -> set[str]:
    names = set()
    for entry in overrides.get_overridable_functions()[torch.Tensor]:
        name = getattr(entry, "__name__", "")
        if name == "__get__":  # a property's getter
            qualified = getattr(entry, "__qualname__", "")
            name = qualified.split(".")[-2] if "." in qualified else ""
        names.add(name)
    for prop in ("shape", "dtype", "device", "ndim", "grad", "requires_grad", "is_cuda", "layout", "T", "mT",
                 "real", "imag", "names", "is_leaf", "itemsize", "nbytes"):
        if hasattr(torch.Tensor, prop):
            names.add(prop)
    names = {n for n in names if n and _public(n)} | NON_TENSOR_ATTRIBUTES
    return {n for n in names if n not in DENIED}


def derive() -> dict:
    members = _members()
    prefixes = {m.rsplit(".", k)[0] for m in members for k in range(1, m.count(".") + 1)}
    prefixes = {p for p in prefixes if p in ("math", "torch") or p in NAMESPACES or p in {"torch.jit", "torch.compiler"}
                or p == "torch.nn"}
    return {
        "torch_version": torch.__version__.split("+")[0],
        "derived_by": "scripts/derive_allowlist.py",
        "globals": GLOBALS,
        "module_prefixes": sorted(prefixes),
        "members": sorted(members),
        "value_attributes": sorted(_value_attributes()),
        "denied": {k: v for k, v in sorted(DENIED.items()) if v},
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the shipped list is not what this torch gives")
    args = parser.parse_args(argv)
    text = render(derive())
    if args.check:
        shipped = OUT.read_text(encoding="utf-8") if OUT.is_file() else ""
        if shipped != text:
            print(f"{OUT.name} is not what torch {torch.__version__} gives: run python scripts/derive_allowlist.py",
                  file=sys.stderr)
            return 1
        print(f"{OUT.name} is up to date for torch {torch.__version__}")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(json.loads(text)['members'])} members) for torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
