"""Load a generated OM by (spec, variant), checking first that generated/ is what the spec compiles to.

Nothing here knows a particular OM: everything comes from the generated
module's metadata (``INPUTS``, ``CONFIG``, ``ENTRYPOINTS``, ``Session``).
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]

__all__ = ["OM", "load_om", "entrypoint_outputs", "PROJECT_ROOT", "COMPILE_MODES", "StaleGenerated", "compile_mode"]


def _module_name(variant: str) -> str:
    return variant.replace("-", "_")


def _import_generated(om_name: str, variant: str, out: Optional[Path]) -> ModuleType:
    module = _module_name(variant)
    if out is None or out.resolve() == (PROJECT_ROOT / "generated").resolve():
        name = f"generated.{om_name}.{module}"
        importlib.invalidate_caches()
        if name in sys.modules:
            return importlib.reload(sys.modules[name])
        return importlib.import_module(name)
    path = out / om_name / f"{module}.py"
    name = f"_omgen_runtime_{om_name}_{module}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot import the generated OM")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # TorchScript resolves globals through the module
    spec.loader.exec_module(mod)
    return mod


#: ``om.compile`` of a run config: ``check`` (default) compiles the spec in memory and stops the run when
#: generated/ differs from it; ``write`` recompiles the stale files at start (atomically); ``off`` imports
#: generated/ as it is. ``true``/``false`` are ``write``/``off``.
COMPILE_MODES = ("check", "write", "off")


class StaleGenerated(ValueError):
    """generated/ does not hold what the spec compiles to (one line: the file, the spec, the command to run)."""


def compile_mode(value: Any) -> str:
    """A config's ``om.compile`` as one of COMPILE_MODES; anything else is a ValueError naming the key."""
    if value is True:
        return "write"
    if value is False:
        return "off"
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    raise ValueError(f"om.compile: expected one of {', '.join(COMPILE_MODES)} (or true/false), got {value!r}")


def ensure_compiled(spec_path: str | Path, variant: str, out: Optional[str | Path] = None,
                    *, mode: str = "check") -> tuple[str, List[Path]]:
    """Compile ``variant`` of ``spec_path`` in memory and compare it with the generated file.

    ``check``: a stale or missing file raises :class:`StaleGenerated`; ``write``: stale files are rewritten
    (``omgen.write``, atomic). A spec that does not compile raises its ``omgen.SpecErrors`` in both modes:
    the runtime never runs code its spec no longer describes. Where the compiler cannot be imported (libcst
    not installed, as on a machine that only trains) the existing file is used with a warning.
    Returns ``(om name, written paths)``.
    """
    spec_path = Path(spec_path)
    try:
        import omgen
    except ImportError as exc:
        om_name, existing = _existing_generated(spec_path, variant, out)
        if existing is not None:
            warnings.warn(f"the omgen compiler cannot be imported ({exc}); using the existing {existing} "
                          "without checking that it is fresh", stacklevel=2)
            return om_name, []
        raise
    result = omgen.compile_spec(spec_path, variants=[variant], out=out)
    stale = omgen.stale(result, all_variants=False)
    if stale and mode == "check":
        flags = f" -o {out}" if out is not None else ""
        path = Path(stale[0][0])
        raise StaleGenerated(f"{path} is {'stale' if path.exists() else 'missing'} for {spec_path} "
                             f"(variant {variant!r}): run `omgen compile {spec_path}{flags}`, or set "
                             "om.compile: write to recompile at start")
    written: List[Path] = []
    if stale and mode == "write":
        written = omgen.write(result)
    return result.spec.om, written


def _existing_generated(spec_path: Path, variant: str, out: Optional[str | Path]) -> tuple[str, Optional[Path]]:
    """The OM name read from the spec's text, and the generated file of ``variant`` if it exists."""
    om_name = _om_name_from_text(spec_path)
    base = Path(out) if out is not None else PROJECT_ROOT / "generated"
    existing = base / om_name / f"{_module_name(variant)}.py" if om_name else None
    return om_name, (existing if existing is not None and existing.exists() else None)


def _om_name_from_text(spec_path: Path) -> str:
    """`om: name` (YAML, quoted or not) or `om = "name"` (a Python spec's module-level assignment)."""
    pattern = r"""^om\s*=\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""" if spec_path.suffix == ".py" else \
        r"""^om:\s*["']?([A-Za-z_][A-Za-z0-9_]*)"""
    try:
        match = re.search(pattern, spec_path.read_text(encoding="utf-8"), re.M)
    except OSError:
        return ""
    return match.group(1) if match else ""


def entrypoint_outputs(module: ModuleType, entrypoint: str) -> List[str]:
    """Output names of an entrypoint (the generated module's ``OUTPUTS``)."""
    return list(module.OUTPUTS[entrypoint])


@dataclasses.dataclass
class OM:
    """A loaded generated OM variant and its metadata."""

    module: ModuleType
    name: str
    variant: str

    @property
    def inputs(self) -> Dict[str, Dict[str, str]]:
        return dict(self.module.INPUTS)

    @property
    def defaults(self) -> Dict[str, Any]:
        return dict(self.module.CONFIG)

    @property
    def entrypoints(self) -> List[str]:
        return list(self.module.ENTRYPOINTS)

    def inputs_with_role(self, role: str) -> List[str]:
        return [n for n, meta in self.module.INPUTS.items() if meta.get("role") == role]

    @property
    def prediction_inputs(self) -> List[str]:
        return self.inputs_with_role("prediction")

    @property
    def truth_inputs(self) -> List[str]:
        return self.inputs_with_role("truth")

    @property
    def size_inputs(self) -> List[str]:
        """Inputs that carry only sizes (``type: Size``), e.g. the output grid [h, w] the targets are drawn on."""
        return [n for n, meta in self.module.INPUTS.items() if meta.get("type") == "Size"]

    def sizes_from(self, tensors: Mapping[str, Any]) -> Dict[str, List[int]]:
        """Each size input whose sizes are all named in the declared shape of one of ``tensors`` (OM input
        name -> tensor), read off that tensor: the grid [h, w] from a heat map [N, C, h, w]."""
        found: Dict[str, List[int]] = {}
        for name in self.size_inputs:
            wanted = _shape_names(self.module.INPUTS[name]["shape"])
            for source, value in tensors.items():
                declared = _shape_names(self.module.INPUTS.get(source, {}).get("shape", "any"))
                if isinstance(value, torch.Tensor) and value.dim() == len(declared) and wanted and \
                        all(s in declared for s in wanted):
                    found[name] = [int(value.shape[declared.index(s)]) for s in wanted]
                    break
        return found

    def has(self, entrypoint: str) -> bool:
        return entrypoint in self.module.ENTRYPOINTS

    def outputs(self, entrypoint: str) -> List[str]:
        return entrypoint_outputs(self.module, entrypoint)

    def check_config(self, config: Mapping[str, Any]) -> None:
        unknown = sorted(set(config) - set(self.module.CONFIG))
        if unknown:
            raise ValueError(f"OM {self.name}/{self.variant}: unknown config {unknown}; known: {sorted(self.module.CONFIG)}")

    def build(self, entrypoint: str, config: Optional[Mapping[str, Any]] = None) -> torch.nn.Module:
        """An entrypoint module with config values overriding the variant's defaults."""
        config = dict(config or {})
        self.check_config(config)
        if entrypoint not in self.module.ENTRYPOINTS:
            raise KeyError(f"OM {self.name}/{self.variant} has no entrypoint {entrypoint!r}; it has {self.entrypoints}")
        return self.module.ENTRYPOINTS[entrypoint](**config)

    def session(self, config: Optional[Mapping[str, Any]] = None) -> torch.nn.Module:
        config = dict(config or {})
        self.check_config(config)
        return self.module.Session(**config)

    def signature(self, entrypoint: str) -> List[str]:
        """The input names an entrypoint's forward takes, in order."""
        import inspect

        params = inspect.signature(self.module.ENTRYPOINTS[entrypoint].forward).parameters
        return [p for p in params if p != "self"]


def _shape_names(text: str) -> List[str]:
    """The entries of a generated INPUTS shape ("[N, num_classes, h, w]"); none for "any"."""
    text = text.strip()
    return [] if text == "any" else [part.strip() for part in text.strip("[]").split(",") if part.strip()]


def preset_overrides(om: OM, preset: OM) -> Dict[str, Any]:
    """The config values variant ``preset`` sets (its ``VARIANT_CONFIG``) where ``om``'s differ: a dataset
    preset (a config-only variant such as panoptic's ``synthetic`` or ``coco``) applied to another variant
    (``oracle-all``), so that a method variant runs on a dataset without a variant for each pair. Values
    the preset leaves at the spec's defaults do not touch ``om``'s own; ``om.config`` still wins."""
    if preset.name != om.name:
        raise ValueError(f"config_from: variant {preset.variant!r} is of OM {preset.name}, not {om.name}")
    mine = om.defaults
    return {k: v for k, v in preset.module.VARIANT_CONFIG.items() if mine.get(k) != v}


def om_from_config(o: Mapping[str, Any], default_spec: str,
                   default_variant: str = "base") -> tuple[OM, Dict[str, Any]]:
    """The OM of a config's ``om`` section (``spec``, ``variant``, ``compile``) and the config values to build
    its entrypoints with: ``om.config`` over ``om.config_from`` (a preset variant: see preset_overrides)."""
    spec = o.get("spec", default_spec)
    compile = compile_mode(o.get("compile", "check"))
    om = load_om(spec, str(o.get("variant", default_variant)), compile=compile)
    overrides: Dict[str, Any] = {}
    if o.get("config_from"):
        try:
            preset = load_om(spec, str(o["config_from"]), compile=compile)
        except (ImportError, FileNotFoundError) as exc:
            raise ValueError(f"om.config_from: no variant {o['config_from']!r} of {spec} ({exc})") from None
        overrides = preset_overrides(om, preset)
    return om, {**overrides, **dict(o.get("config", {}) or {})}


def load_om(spec: str | Path, variant: str, *, out: Optional[str | Path] = None,
            compile: str | bool = "check") -> OM:
    """The generated module of ``variant`` of ``spec`` (a spec path, or the name of an OM in generated/).

    ``compile`` (see COMPILE_MODES): ``check`` (default) stops with :class:`StaleGenerated` when the generated
    file is not what the spec compiles to, ``write`` rewrites it first, ``off`` imports it as it is. Nothing
    under the source tree is written unless asked.
    """
    mode = compile_mode(compile)
    spec_path = Path(spec)
    if not spec_path.is_absolute() and not spec_path.exists() and (PROJECT_ROOT / spec_path).exists():
        spec_path = PROJECT_ROOT / spec_path
    if spec_path.suffix in (".yaml", ".yml", ".py") and spec_path.exists():
        if mode != "off":
            om_name, _ = ensure_compiled(spec_path, variant, out, mode=mode)
        else:
            om_name = _om_name_from_text(spec_path)
    elif spec_path.suffix in (".yaml", ".yml", ".py"):
        raise FileNotFoundError(f"{spec}: no such spec file")
    else:
        om_name = str(spec)
    module = _import_generated(om_name, variant, Path(out) if out is not None else None)
    return OM(module, om_name, variant)
