"""`omgen compile --verify`: import the generated files and torch.jit.script every module, in a child process.

The compiler never imports torch nor a generated module itself: the check
runs in a separate Python process, only after each file is known to parse
and to run nothing at import (omgen/inert.py), so even a bug in that proof
cannot run anything inside the compiler.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator

from .compile import CompileResult
from .errors import Location, SpecErrors

VERIFY_TIMEOUT_S = 600

_CHILD = r"""
import importlib.util, json, sys
import torch
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("_omgen_verify", path)
module = importlib.util.module_from_spec(spec)
sys.modules["_omgen_verify"] = module
spec.loader.exec_module(module)
scripted = []
for name, cls in module.ENTRYPOINTS.items():
    torch.jit.script(cls())
    scripted.append(name)
torch.jit.script(module.Session())
print(json.dumps(scripted))
"""


def verify_files(result: CompileResult) -> Iterator[str]:
    for generated in result.files:
        if generated.path.name == "__init__.py":
            continue
        try:
            child = subprocess.run([sys.executable, "-c", _CHILD, str(generated.path)], capture_output=True, text=True,
                                   timeout=VERIFY_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SpecErrors.single(Location(str(generated.path)), f"--verify: no answer in {VERIFY_TIMEOUT_S} s") from None
        if child.returncode != 0:
            lines = [line for line in child.stderr.strip().splitlines() if line.strip()]
            raise SpecErrors.single(Location(str(generated.path)), "--verify failed: "
                                    + (lines[-1] if lines else f"exit status {child.returncode}"))
        scripted = json.loads(child.stdout.strip().splitlines()[-1])
        yield f"{generated.path}: scripted {', '.join(scripted)}, Session"
