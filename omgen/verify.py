"""`omgen compile --verify`: import the generated files and torch.jit.script every module.

The only compiler module that imports torch, and only when asked to verify.
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Iterator

from .compile import CompileResult


def verify_files(result: CompileResult) -> Iterator[str]:
    import torch

    for generated in result.files:
        if generated.path.name == "__init__.py":
            continue
        name = f"_omgen_verify_{result.spec.om}_{generated.path.stem}"
        spec = importlib.util.spec_from_file_location(name, generated.path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            scripted = []
            for entrypoint, cls in module.ENTRYPOINTS.items():
                torch.jit.script(cls())
                scripted.append(entrypoint)
            torch.jit.script(module.Session())
        finally:
            sys.modules.pop(name, None)
        yield f"{generated.path}: scripted {', '.join(scripted)}, Session"
