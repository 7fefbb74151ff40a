"""Known ways out of a "pure" function body, each written as a term body over the input `x`.

Each must be refused by `omgen compile` with one line at the body's line (tests/security/test_attacks.py).
Gathered from sandbox-escape write-ups (CPython jails, pickle and numpy round-trips, torch's own loaders) and the
issue that asked for the check (issue 20).
"""
from __future__ import annotations

ATTACKS = {
    # the interpreter through dunder chains
    "class-subclasses": "return ().__class__.__bases__[0].__subclasses__()",
    "tensor-class-mro": "return x.__class__.__mro__[-1].__subclasses__()",
    "torch-builtins-eval": 'e = torch.__builtins__["eval"]("1+1")\nreturn x',
    "function-globals": "return twice.__globals__",
    "code-object": "return twice.__code__",
    "dunder-name": "return __builtins__",
    "dunder-import-name": 'return __import__("os")',
    "lambda-globals": "f = lambda: 0\nreturn f.__globals__",
    "tensor-reduce": "return x.__reduce_ex__(2)",
    # string evaluation and attribute access by name
    "eval": 'return eval("x")',
    "exec": 'exec("import os")\nreturn x',
    "compile-builtin": 'c = compile("1", "f", "eval")\nreturn x',
    "getattr-builtin": 'return getattr(x, "numpy")()',
    "operator-attrgetter": 'return operator.attrgetter("numpy")(x)',
    "format-attribute": 'return "{0.__class__}".format(x)',
    "format-map": 'return "{x.__class__}".format_map({"x": x})',
    "vars": "return vars(x)",
    "globals": "return globals()",
    # files, native code, other processes through torch
    "torch-save": 'torch.save(x, "leak.pt")\nreturn x',
    "torch-load": 'return torch.load("payload.pt")',
    "torch-from-file": 'return torch.from_file("/etc/passwd", size=10)',
    "torch-hub": 'return torch.hub.load("someone/repo", "model")',
    "torch-ops-load-library": 'torch.ops.load_library("evil.so")\nreturn x',
    "torch-utils-cpp-extension": 'torch.utils.cpp_extension.load_inline("m", "")\nreturn x',
    "torch-jit-load": 'return torch.jit.load("model.ts")',
    "torch-serialization": 'return torch.serialization.load("payload.pt")',
    "torch-module-as-value": "t = torch\nreturn t.save",
    "F-module-attribute": "return F.torch.save",
    "torch-distributed": "torch.distributed.init_process_group('gloo')\nreturn x",
    "torch-set-global": "torch.set_default_dtype(torch.float64)\nreturn x",
    "torch-manual-seed": "torch.manual_seed(0)\nreturn x",
    # numpy and raw memory round-trips
    "numpy-tofile": 'x.numpy().tofile("leak.bin")\nreturn x',
    "from-numpy": "return torch.from_numpy(x.numpy())",
    "storage-from-file": 'return x.storage_type().from_file("/etc/passwd")',
    "untyped-storage": "return x.untyped_storage()",
    "data-ptr": "return x.data_ptr()",
    "frombuffer": "return torch.frombuffer(bytearray(4), dtype=torch.uint8)",
    # hooks and callables that run later
    "register-hook": "x.register_hook(lambda g: g)\nreturn x",
    "apply-python": "return x.apply_(lambda v: v)",
    "set-storage": "return x.set_(x)",
    "data-write": "x.data = x\nreturn x",
    # building classes, importing, escaping the scope
    "class-definition": "class A:\n    pass\nreturn x",
    "type-construction": 'A = type("A", (), {})\nreturn x',
    "import": "import os\nreturn x",
    "import-from": "from os import system\nreturn x",
    "global": "global twice\nreturn x",
    "print": 'print("leak")\nreturn x',
    "open": 'open("leak", "w")\nreturn x',
    "private-torch": "return torch._C._get_tracing_state()",
    "private-tensor-attribute": "return x._cdata",
    "yield": "yield x",
    "breakpoint": "breakpoint()\nreturn x",
}
