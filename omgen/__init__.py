"""omgen: compile declarative output mathematics into flat, TorchScript-compatible PyTorch.

The compiler never imports torch and never executes spec code.
"""
from .compile import CompileResult, build_graph, compile_spec, load, stale, write
from .errors import Diagnostic, Location, SpecErrors

__all__ = ["CompileResult", "Diagnostic", "Location", "SpecErrors", "build_graph", "compile_spec", "load", "stale",
           "write", "OutputMath", "mixin", "no_cache", "term"]
__version__ = "0.1.0"


class OutputMath:
    """Marker base of Python-frontend specs; never instantiated by omgen (specs are parsed, not run).

    Where a spec *is* run as plain Python classes (ModulOM style, in tests), a term declared with
    ``@term(outputs=[...])`` gets one method per part, ``self.part()`` = ``self.whole()[i]``, as the compiler
    makes one term per part. ``self.into`` (read by ``@term(into=True)`` bodies) is None: no held result; and
    ``self.number_from`` is 0: a batch numbers its rows from 0.
    """

    into = None
    number_from = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for whole, function in list(vars(cls).items()):
            for index, part in enumerate(getattr(function, "__omgen_outputs__", ())):
                if part not in vars(cls):
                    setattr(cls, part, _part_method(whole, index, part))


def _part_method(whole: str, index: int, name: str):
    def part(self):
        return getattr(self, whole)()[index]

    part.__name__ = part.__qualname__ = name
    return part


from .markers import mixin, no_cache, term  # noqa: E402  (markers import OutputMath from here)
