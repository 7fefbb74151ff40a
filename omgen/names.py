"""Every name a generated module defines or imports, listed once.

The template writes ``IMPORT_BLOCK`` (``IMPORTS``: what it binds); the analyser lets bodies read ``IMPORTED``;
the loaders refuse spec names in ``RESERVED`` and member names in
``MODULE_MEMBERS``; the validator refuses entrypoint and function names in
``GENERATED_NAMES``; the Python frontend allows exactly the imports of
``ALLOWED_IMPORTS``. tests/omgen/test_names.py checks this list against the
template and ``dir(torch.nn.Module)`` of the installed torch (the compiler
itself never imports torch).
"""
from __future__ import annotations

import ast

#: The import block of every generated module, as the template writes it.
IMPORT_BLOCK = """\
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
"""


def _bindings(block: str) -> tuple[tuple[str, str], ...]:
    """(module, name bound) of each import in ``block`` (parsed, never run)."""
    pairs = []
    for node in ast.parse(block).body:
        if isinstance(node, ast.Import):
            pairs += [(a.name, a.asname or a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            pairs += [(str(node.module), a.asname or a.name) for a in node.names]
    return tuple(pairs)


IMPORTS = _bindings(IMPORT_BLOCK)
#: Names the imports bind: what a term or function body may read besides its own spec's names.
IMPORTED = frozenset(bound for _, bound in IMPORTS)
#: Module-level definitions of the generated module (besides the entrypoint classes and spec functions).
MODULE_DEFINITIONS = frozenset({"Terms", "Session", "ENTRYPOINTS", "CONFIG", "VARIANT_CONFIG", "INPUTS", "OUTPUTS",
                                "SOURCES", "OM", "VARIANT", "MIXINS", "_check_input", "_check_sizes", "_size_problem",
                                "_one_image_at_a_time", "_fits", "_written", "_numbered", "_numbered_in_place",
                                "_shape_error", "_input", "_dtype_name"})
GENERATED_NAMES = IMPORTED | MODULE_DEFINITIONS
#: What the body of an `into: true` term reads as the tensor it may write its result into (omgen/model.py).
INTO = "into"
#: What an `into: true` term's body may read as the number its image's first row takes where a per_image
#: entrypoint numbers it (0 on every other path): a term that reads it numbers its own values.
NUMBER_FROM = "number_from"
#: Both: what only an `into: true` body reads, and no spec name may take.
INTO_NAMES = (INTO, NUMBER_FROM)
#: Names no spec input, term, config value or function may take (a function argument may be `into`).
RESERVED = IMPORTED | {"self", "super"}

#: torch.nn.Module's public members (torch 2.13; the test compares with the installed torch) and the members
#: the generated Terms / entrypoint / Session classes add: a term or config value must not hide any.
TORCH_MODULE_MEMBERS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "type", "xpu", "zero_grad",
})
GENERATED_MEMBERS = frozenset({"training", "bind", "terms", "set_terms", "forward_dict", "forward_into"})
MODULE_MEMBERS = TORCH_MODULE_MEMBERS | GENERATED_MEMBERS


def allowed_imports(markers: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module -> names a Python spec may bind by importing it: the generated module's imports plus ``markers``
    (the omgen marker modules)."""
    allowed: dict[str, set[str]] = {}
    for module, bound in IMPORTS:
        allowed.setdefault(module, set()).add(bound)
    for module, names in markers.items():
        allowed.setdefault(module, set()).update(names)
    return allowed
