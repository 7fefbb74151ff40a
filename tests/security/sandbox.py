"""Import a generated module with torch stubbed out and every dangerous builtin booby-trapped.

An independent check of "importing a generated file runs nothing of the spec's":
the module's top level really runs (class bodies, decorators, defaults,
annotations), but torch is a stub and open/exec/eval/print/__import__ of any
other module raise, so whatever a hostile spec smuggled in is caught in the act.
"""
from __future__ import annotations

import builtins
import math
import types
import typing


class Escaped(Exception):
    """Import-time code reached something only a spec's own code would call."""


def _torch_stub() -> types.ModuleType:
    torch = types.ModuleType("torch")
    nn = types.ModuleType("torch.nn")
    functional = types.ModuleType("torch.nn.functional")
    jit = types.ModuleType("torch.jit")

    class Module:
        def __init__(self, *args, **kwargs):
            pass

    class Tensor:
        pass

    nn.Module, nn.functional = Module, functional
    jit.export = lambda f: f
    torch.nn, torch.jit, torch.Tensor = nn, jit, Tensor
    torch.device, torch.dtype = type("device", (), {}), type("dtype", (), {})
    return torch


def _trap(name: str):
    def trapped(*args, **kwargs):
        raise Escaped(f"{name} called at import")
    return trapped


def sandbox_import(source: str, filename: str) -> dict:
    """Run `source` as a module top level in the sandbox; its namespace, or Escaped."""
    torch = _torch_stub()
    modules = {"torch": torch, "torch.nn": torch.nn, "torch.nn.functional": torch.nn.functional,
               "math": math, "typing": typing}

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if level or name not in modules:
            raise Escaped(f"import of {name!r} at import time")
        return modules[name] if fromlist or "." not in name else modules[name.split(".")[0]]

    safe = dict(vars(builtins))
    for name in ("open", "exec", "eval", "compile", "print", "input", "breakpoint", "globals", "locals", "vars",
                 "getattr", "setattr", "delattr", "exit", "quit", "help", "memoryview"):
        safe[name] = _trap(name)
    safe["__import__"] = importer
    namespace = {"__name__": "_sandboxed", "__builtins__": safe}
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - the point of the test
    return namespace
