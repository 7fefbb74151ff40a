"""Arbitrary text in every text field of a spec: compile refuses with one line, or writes files that
import without running anything and say what the spec says."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings, strategies as st

HOSTILE = ['"', "'", '"""', "'''", "\\", "\n", "\r", "\r\n", "\x00", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c",
           "\t", "#", "\u202e", "\ufeff", "{", "}", "$", "%", "`", "\x1b", " "]
INJECTIONS = [
    '"""\n    open("PWNED", "w")\n    """',
    "\nopen('PWNED', 'w')\n",
    '\\',
    'ends with a quote"',
    "x\n\nimport os\nos.system('true')",
    '\r__import__("os").system("true")#',
]
# YAML cannot carry lone surrogates; the Python frontend's test covers them
text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.characters(blacklist_categories=("Cs",))),
                max_size=30).map("".join)

TEXT_FIELDS = {
    "spec doc": ("doc",),
    "config doc": ("config", "threshold", "doc"),
    "string default": ("config", "label", "default"),
    "input doc": ("inputs", "heat_logits", "doc"),
    "function doc": ("functions", "twice", "doc"),
    "block doc": ("blocks", "Prediction", "doc"),
    "term doc": ("blocks", "Prediction", "terms", "heat_pred", "doc"),
    "term math": ("blocks", "Prediction", "terms", "heat_pred", "math"),
    "mixin doc": ("mixins", "oracle-heat", "doc"),
    "variant doc": ("variants", "oracle", "doc"),
    "entrypoint doc": ("entrypoints", "train", "doc"),
}


def _set(spec: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        spec = spec[key]
    spec[path[-1]] = value


def _get(spec: dict, path: tuple[str, ...]):
    for key in path:
        spec = spec[key]
    return spec


def _as_read(spec: dict) -> dict:
    return yaml.safe_load(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))


def _words(value: str) -> str:
    return " ".join(value.split())


@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text)
@example(value=INJECTIONS[0])
@example(value=INJECTIONS[1])
@example(value=INJECTIONS[2])
@example(value=INJECTIONS[3])
@example(value=INJECTIONS[4])
@example(value=INJECTIONS[5])
def test_text_field(compile_yaml, field, value):
    from .conftest import base_spec

    spec = base_spec()
    _set(spec, TEXT_FIELDS[field], value)
    status, err, modules = compile_yaml(spec)
    if status:
        return
    value = _get(_as_read(spec), TEXT_FIELDS[field])  # what YAML itself makes of the text (NEL is a line break)
    base = modules["base"]
    if field == "spec doc":
        assert _words(base["__doc__"]) == _words(value) or (not value.strip() and "toy" in base["__doc__"])
    elif field == "string default":
        assert base["CONFIG"]["label"] == value
    elif field == "term doc" and _words(value):
        assert _words(base["Terms"].heat_pred.__doc__) == _words(value)  # wrapped within the line
    elif field == "function doc" and _words(value):
        assert _words(base["twice"].__doc__) == _words(value)
    elif field == "entrypoint doc":
        # every line's words survive; whitespace as Python's docstring rule (inspect.cleandoc expands tabs)
        assert all(_words(line) in _words(base["Train"].__doc__) for line in value.splitlines())


NAME_FIELDS = ["om", "variant", "mixin", "block", "term", "entrypoint", "config", "input"]


def _rename(spec: dict, field: str, name: str) -> None:
    if field == "om":
        spec["om"] = name
    elif field == "variant":
        spec["variants"][name] = spec["variants"].pop("oracle")
    elif field == "mixin":
        spec["mixins"][name] = spec["mixins"].pop("oracle-heat")
        spec["variants"]["oracle"]["mixins"] = [name]
    elif field == "block":
        spec["blocks"][name] = spec["blocks"].pop("Prediction")
        spec["blocks"]["Losses"]["bases"] = [name]
    elif field == "term":
        spec["blocks"]["Losses"]["terms"][name] = spec["blocks"]["Losses"]["terms"].pop("loss")
        spec["entrypoints"]["train"]["outputs"] = [name]
    elif field == "entrypoint":
        spec["entrypoints"][name] = spec["entrypoints"].pop("infer")
    elif field == "config":
        spec["config"][name] = spec["config"].pop("label")
    elif field == "input":
        spec["inputs"][name] = spec["inputs"].pop("points")


@pytest.mark.parametrize("field", NAME_FIELDS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text)
@example(value="v2\n")
@example(value="ok\nimport os")
@example(value="a-b")
@example(value="__init__")
@example(value="class")
def test_name_field(compile_yaml, field, value):
    from .conftest import base_spec

    spec = base_spec()
    _rename(spec, field, value)
    status, err, modules = compile_yaml(spec)
    if status == 0:  # a name that compiled is a plain identifier (or a variant/mixin name of - and _)
        assert value.isascii() and "\n" not in value and value.replace("-", "_").isidentifier(), value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=text)
@example(value="x\nimport os")
@example(value='"; open("PWNED", "w"); "')
def test_set_value(compile_yaml, value):
    from .conftest import base_spec

    status, err, modules = compile_yaml(base_spec(), "--set", f"label={value}")
    if status == 0:
        assert isinstance(modules["base"]["CONFIG"]["label"], str)
