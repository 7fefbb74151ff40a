"""The last emit step: ruff lays out the code, the emitter wraps docstrings and comments within LINE."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from omgen import format as fmt
from omgen.cli import main
from omgen.literals import LINE, comment_lines, docstring

words = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
                         min_size=1, max_size=30).filter(str.isprintable), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(words=words, indent=st.sampled_from(["", "    ", "        "]))
def test_a_wrapped_docstring_keeps_every_word_and_fits(words, indent):
    """Backslashes are doubled inside the triple-quoted literal (found by this test: a word ending in a
    backslash once made a 101-column repr() line)."""
    text = " ".join(words)
    literal = docstring(text, indent)
    source = f"def f():\n{indent}{literal}\n" if indent else literal
    lines = source.splitlines()
    value = ast.get_docstring(ast.parse(source).body[0] if indent else ast.parse(source), clean=False)
    assert value.split() == text.split()
    if all(len(w) < LINE - len(indent) - 8 for w in words):  # a word longer than the line stays whole
        assert max(len(line) for line in lines) <= LINE


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=400), indent=st.sampled_from(["", "    ", "        "]))
@example(text="0\r0", indent="")  # a carriage return splits the text into lines
@example(text="x" * 90 + " \\" + "\x00" * 60, indent="    ")  # backslash, then control characters
def test_any_docstring_is_one_constant_of_the_text_within_the_line(text, indent):
    """Control characters, quotes and line separators too: escaped pieces, implicitly concatenated."""
    literal = docstring(text, indent)
    source = f"def f():\n{indent}{literal}\n{indent}return 1\n" if indent else literal + "\n"
    tree = ast.parse(source)
    node = tree.body[0] if indent else tree
    assert ast.get_docstring(node, clean=False).split() == text.split()  # every word; wrapping moves only spaces
    assert max((len(line) for line in source.splitlines()), default=0) <= LINE


def test_a_short_docstring_stays_on_one_line():
    assert docstring("One line.", "    ") == '"""One line."""'
    wrapped = docstring("word " * 30, "    ")
    assert wrapped.count("\n") >= 1 and wrapped.endswith('\n    """')


def test_comment_lines_wrap_and_stay_comments():
    lines = comment_lines("a " * 80 + "\u2028 end\r", "    # ")
    assert len(lines) >= 2 and all(len(line) <= LINE and line.startswith("    # ") for line in lines)
    assert lines[1].startswith("    #   ")  # continuation indented
    assert all("\u2028" not in line and "\r" not in line for line in lines)
    assert "".join(lines).count("end") == 1


def test_formatting_keeps_the_meaning_and_fits_the_line():
    source = ("def f(a, b):\n    return [a + b for a in range(100000000000000000)] + [b * a for b in range(2000000000000000)]"
              " + [a - b]\n")
    out = fmt.format_module(source, "m.py")
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(source))
    assert max(len(line) for line in out.splitlines()) <= LINE


def test_same_meaning_sees_a_change_of_code_but_not_of_docstring_indentation():
    assert not fmt.same_meaning("x = 1\n", "x = 2\n")
    assert not fmt.same_meaning("x = (a + b) * c\n", "x = a + b * c\n")
    assert fmt.same_meaning('def f():\n    """a\n       b"""\n', 'def f():\n    """a\n    b"""\n')


@pytest.mark.parametrize("spec", ["specs/panoptic.yaml", "specs/centernet.yaml", "specs/pose.yaml",
                                  "specs/examples/toy_peaks.yaml", "tests/omgen/golden/chains.yaml"])
def test_the_layout_of_every_shipped_module_keeps_its_meaning(spec):
    from omgen.compile import build_graph, load, select_variants
    from omgen.emit import emit_module

    root = Path(__file__).parents[2]
    loaded = load(root / spec)
    for variant in select_variants(loaded):
        emitted = emit_module(build_graph(loaded, variant))
        assert fmt.same_meaning(emitted, fmt.format_module(emitted, variant.name)), (spec, variant.name)


def test_another_ruff_version_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(fmt, "_checked", {fmt._ruff_binary(): "0.0.1"})
    spec = tmp_path / "specs" / "toy.yaml"
    spec.parent.mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    spec.write_text((Path(__file__).parents[2] / "specs" / "examples" / "toy_peaks.yaml").read_text())
    assert main(["compile", str(spec), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{spec}: error: generated code is laid out by ruff {fmt.RUFF_VERSION}, found 0.0.1: "
                   f"pip install ruff=={fmt.RUFF_VERSION}"]
    assert not (tmp_path / "generated").exists()  # nothing half-written


def test_no_configuration_file_changes_the_layout(tmp_path, monkeypatch):
    (tmp_path / "ruff.toml").write_text('line-length = 40\n[format]\nquote-style = "single"\n')
    monkeypatch.chdir(tmp_path)
    assert fmt.format_module('x = "a"\n', "m.py") == 'x = "a"\n'
