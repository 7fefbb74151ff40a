"""omgen: compile declarative output mathematics into flat, TorchScript-compatible PyTorch.

The compiler never imports torch and never executes spec code.
"""
from .compile import CompileResult, build_graph, compile_spec, load, stale, write
from .errors import Diagnostic, Location, SpecErrors

__all__ = ["CompileResult", "Diagnostic", "Location", "SpecErrors", "build_graph", "compile_spec", "load", "stale",
           "write", "OutputMath", "mixin", "no_cache", "term"]
__version__ = "0.1.0"


class OutputMath:
    """Marker base of Python-frontend specs; never instantiated by omgen (specs are parsed, not run)."""


from .markers import mixin, no_cache, term  # noqa: E402  (markers import OutputMath from here)
