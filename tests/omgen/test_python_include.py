"""`include` in Python specs: YAML spec libraries give a Python spec their functions, config and inputs."""
import textwrap
from pathlib import Path

import pytest

from omgen import compile_spec, load
from omgen.cli import main
from omgen.convert import convert

from test_python_frontend import assert_same_generated  # tests/omgen is on sys.path (rootdir import mode)

ROOT = Path(__file__).resolve().parents[2]

LIBRARY = """
# a spec library: no om
config:
  scale: {type: float, default: 2.0, doc: Factor of scaled.}
functions:
  scaled:
    args: {x: Tensor, factor: float}
    returns: Tensor
    expr: x * factor
  unused_here:
    args: {x: Tensor}
    returns: Tensor
    expr: x + 1
"""

PY_SPEC = '''
from omgen import OutputMath

om = "inc"
include = ["lib/shared.yaml"]
inputs = {"x": {"shape": ["N"], "dtype": "float"}}


class A(OutputMath):
    offset: float = 1.0

    def y(self):
        return scaled(self.x, self.scale) + self.offset


compose = [A]
entrypoints = {"t": ["y"]}
'''

YAML_SPEC = """
om: inc
include: [lib/shared.yaml]
config:
  offset: {type: float, default: 1.0}
inputs:
  x: {type: Tensor, shape: [N], dtype: float, role: other}
blocks:
  A:
    terms:
      y: {expr: 'scaled(x, scale) + offset'}
compose: [A]
entrypoints:
  t: [y]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "shared.yaml").write_text(LIBRARY.lstrip("\n"))
    return tmp_path


def write(project: Path, name: str, text: str) -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_python_spec_uses_included_functions_and_config_like_its_yaml_twin(project):
    py = write(project, "spec.py", PY_SPEC)
    yml = write(project, "spec.yaml", YAML_SPEC)
    assert_same_generated(py, yml)
    spec = load(py)
    assert spec.includes == ("lib/shared.yaml",)
    assert [s[0] for s in spec.sources] == ["spec.py", "lib/shared.yaml"]
    assert {c.name: c.default for c in spec.config} == {"offset": 1.0, "scale": 2.0}
    source = compile_spec(py).files[0].source
    assert "def scaled(x: Tensor, factor: float) -> Tensor:" in source
    assert "unused_here" not in source  # only the functions a variant calls are emitted


def test_generated_code_goes_stale_when_an_included_library_changes(project, capsys):
    py = write(project, "spec.py", PY_SPEC)
    out = project / "generated"
    assert main(["compile", str(py), "-o", str(out)]) == 0
    assert main(["compile", "--check", str(py), "-o", str(out)]) == 0
    library = project / "lib" / "shared.yaml"
    library.write_text(library.read_text().replace("expr: x * factor", "expr: x * factor * 1.0"))
    capsys.readouterr()
    assert main(["compile", "--check", str(py), "-o", str(out)]) == 1
    assert "1 stale file(s)" in capsys.readouterr().err
    assert main(["compile", str(py), "-o", str(out)]) == 0
    assert "x * factor * 1.0" in (out / "inc" / "base.py").read_text()


BAD = {
    "missing_file": ('include = ["lib/nope.yaml"]', "spec.py:5:12: error: cannot read spec file 'lib/nope.yaml'"),
    "python_file": ('include = ["lib/other.py"]',
                    "spec.py:5:12: error: include 'lib/other.py' is not a YAML spec library"),
    "not_a_list": ('include = "lib/shared.yaml"', "spec.py:5:11: error: include must be a list of spec file paths"),
    "not_a_string": ("include = [3]", "spec.py:5:12: error: an entry of include must be a string, got 3"),
    "name_clash": ('include = ["lib/shared.yaml"]\n\n\ndef scaled(x: Tensor) -> Tensor:\n    return x\n',
                   "spec.py:8:5: error: duplicate name 'scaled' (function) (already defined at lib/shared.yaml:5:3)"),
    "config_clash": ('include = ["lib/shared.yaml"]\n\n\nclass Base(OutputMath):\n    scale: float = 3.0\n',
                     "spec.py:9:5: error: duplicate name 'scale' (config value) (already defined at lib/shared.yaml:3:3"),
    "library_with_block": ('include = ["lib/blocks.yaml"]',
                           "lib/blocks.yaml:1:10: error: block 'B' of an included library cannot be used by a "
                           "Python spec"),
    "library_with_om": ('include = ["lib/main.yaml"]',
                        "lib/main.yaml:1:1: error: 'om' belongs in the main spec, not in an included file"),
    "unknown_library_function": ('include = ["lib/shared.yaml"]\n\n\ndef other(x: Tensor) -> Tensor:\n'
                                 '    return scaledd(x, 2.0)\n', "'scaledd'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_includes_get_one_line_errors_at_their_place(case, project, capsys):
    line, expected = BAD[case]
    (project / "lib" / "blocks.yaml").write_text("blocks: {B: {terms: {z: {expr: x}}}}\n")
    (project / "lib" / "main.yaml").write_text("om: other\n")
    (project / "lib" / "other.py").write_text("")
    text = PY_SPEC.replace('include = ["lib/shared.yaml"]', line)
    text = text.replace("from omgen import OutputMath\n", "from omgen import OutputMath\nfrom torch import Tensor\n")
    write(project, "spec.py", text)  # the include line is line 5
    assert main(["check", str(project / "spec.py")]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


def test_convert_keeps_includes_both_ways(tmp_path):
    """panoptic.yaml → Python → YAML: the library functions stay in specs/common, included, not copied."""
    py = tmp_path / "panoptic.py"
    list(convert(ROOT / "specs" / "panoptic.yaml", py))
    text = py.read_text()
    assert "include = [" in text and "common/heatmaps.yaml" in text
    assert "def gaussian_heatmap(" not in text and "def max_filter_same(" not in text
    assert "def thing_table(" in text  # the spec's own functions stay
    back = tmp_path / "panoptic.yaml"
    list(convert(py, back))
    assert "gaussian_heatmap:" not in back.read_text() and "include: [" in back.read_text()
    assert_same_generated(ROOT / "specs" / "panoptic.yaml", back)
