"""Hostile files: FIFOs, devices, huge, non-UTF-8, tagged YAML, deep nesting, long include chains, many terms.

Cases that could crash or hang a broken compiler run it in a child process with
a timeout and a memory cap, so a regression fails the test instead of the suite.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import DIAGNOSTIC, base_spec, judge, run_omgen, write_yaml

ROOT = Path(__file__).resolve().parents[2]


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run_child(*argv: str, timeout: float = 60, env: dict | None = None) -> tuple[int, str]:
    """`python -m omgen ARGV` in a child with 3 GB of address space; (status, stderr). A signal death fails."""
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "omgen", *argv], capture_output=True, text=True, timeout=timeout,
                          env=child_env, preexec_fn=_cap_memory, stdin=subprocess.DEVNULL)
    assert done.returncode >= 0, f"killed by signal {-done.returncode}: {done.stderr[-2000:]}"
    return done.returncode, done.stderr


def assert_one_line_refusal(status: int, err: str, *words: str) -> None:
    assert status == 1, (status, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and DIAGNOSTIC.fullmatch(lines[0]), err
    for word in words:
        assert word in lines[0], (word, lines[0])


def spec_with_include(tmp_path: Path, include: str) -> Path:
    spec = base_spec()
    spec["include"] = [include]
    return write_yaml(tmp_path / "spec.yaml", spec)


def test_include_of_a_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    status, err = run_child("compile", str(spec_with_include(tmp_path, "pipe.yaml")), "-o", str(tmp_path / "o"),
                            timeout=30)
    assert_one_line_refusal(status, err, "spec.yaml:", "FIFO")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_include_of_a_device_is_refused(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} is absent")
    status, err = run_child("compile", str(spec_with_include(tmp_path, device)), "-o", str(tmp_path / "o"), timeout=30)
    assert_one_line_refusal(status, err, "spec.yaml:", "device")


def test_include_of_a_directory_is_refused(tmp_path):
    (tmp_path / "lib.yaml").mkdir()
    status, _, err = run_omgen("compile", str(spec_with_include(tmp_path, "lib.yaml")), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "directory")


def test_file_over_the_size_limit_is_refused(tmp_path):
    path = write_yaml(tmp_path / "spec.yaml", base_spec())
    with path.open("a") as handle:
        handle.write("# " + "x" * 5000 + "\n")
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"), env={"OMGEN_MAX_SPEC_BYTES": "4096"})
    assert_one_line_refusal(status, err, "larger than 4096 bytes")


def test_non_utf8_yaml_names_the_byte(tmp_path):
    path = write_yaml(tmp_path / "spec.yaml", base_spec())
    data = path.read_bytes().replace(b"A toy OM.", b"A toy \xff OM.")
    path.write_bytes(data)
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.yaml:2:", "not UTF-8", "0xff")


def test_non_utf8_python_spec_names_the_byte(tmp_path):
    path = tmp_path / "spec.py"
    path.write_bytes(b'"""A spec."""\nom = "x\xe9"\n')
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.py:2:", "not UTF-8")


def test_non_utf8_include_points_at_the_including_line(tmp_path):
    (tmp_path / "lib.yaml").write_bytes(b"functions: {}\n# \xc3\x28\n")
    status, _, err = run_omgen("compile", str(spec_with_include(tmp_path, "lib.yaml")), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.yaml:", "lib.yaml:2:", "not UTF-8")


def test_include_that_is_not_a_spec_points_at_the_including_line(tmp_path):
    (tmp_path / "notes.yaml").write_text("- just\n- a list\n")
    status, _, err = run_omgen("compile", str(spec_with_include(tmp_path, "notes.yaml")), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.yaml:", "notes.yaml", "not a spec")


@pytest.mark.parametrize("tagged", [
    "doc: !!python/object/apply:os.system ['touch PWNED']",
    "doc: !!python/name:os.system",
    "doc: !!binary aGVsbG8=",
    "doc: !custom x",
])
def test_yaml_tags_are_refused_without_constructing(tmp_path, tagged, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = yaml.safe_dump(base_spec(), sort_keys=False).replace("doc: A toy OM.", tagged)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.yaml:2:", "tag")
    assert not (tmp_path / "PWNED").exists()


def test_yaml_aliases_are_refused(tmp_path):
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    path = tmp_path / "spec.yaml"
    path.write_text("om: x\ndoc: y\n" + laughs)
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "anchors")


def test_deep_yaml_nesting(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("om: x\ndoc: " + "[" * 20000 + "]" * 20000 + "\n")
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "nested more than")


def test_include_chain_beyond_the_limit(tmp_path):
    from omgen import limits

    depth = limits.MAX_INCLUDE_DEPTH + 5
    for i in range(depth):
        (tmp_path / f"lib{i}.yaml").write_text(f"include: [lib{i + 1}.yaml]\n" if i + 1 < depth else "functions: {}\n")
    status, _, err = run_omgen("compile", str(spec_with_include(tmp_path, "lib0.yaml")), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "nested more than")


DEEP_BODIES = {
    "parentheses": "(" * 2000 + "heat_logits" + ")" * 2000,
    "unary chain": "-" * 10000 + "heat_logits",
    "unary chain 900": "-" * 900 + "heat_logits",
    "not chain": "not " * 3000 + "heat_logits",
    "binary chain": " + ".join(["heat_logits"] * 3000),
    "or chain": " or ".join(["heat_logits"] * 3000),
    "attribute chain": "heat_logits" + ".abs()" * 3000,
    "subscripts": "heat_logits" + "[0]" * 3000,
    "lambdas": "lambda: " * 500 + "heat_logits",
}


@pytest.mark.parametrize("case", sorted(DEEP_BODIES))
def test_deeply_nested_expression(tmp_path, case):
    spec = base_spec()
    spec["blocks"]["Prediction"]["terms"]["heat_pred"]["expr"] = DEEP_BODIES[case]
    path = write_yaml(tmp_path / "spec.yaml", spec)
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.yaml:", "too complex")


def test_deeply_nested_python_spec(tmp_path):
    path = tmp_path / "spec.py"
    path.write_text('om = "x"\nx = ' + "-" * 10000 + "1\n")
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "spec.py:", "too complex")


def test_nesting_at_the_limit_compiles(compile_yaml):
    from omgen import limits

    spec = base_spec()
    depth = limits.MAX_NESTING - 12  # the body's own statement, call and name levels take the rest
    spec["blocks"]["Prediction"]["terms"]["heat_pred"]["expr"] = "(" * depth + "torch.sigmoid(heat_logits)" + ")" * depth
    status, err, modules = compile_yaml(spec)
    assert status == 0, err


def _many_terms(count: int) -> dict:
    spec = base_spec()
    terms = spec["blocks"]["Prediction"]["terms"]
    terms["t0"] = {"expr": "heat_logits + 1"}
    for i in range(1, count):
        terms[f"t{i}"] = {"expr": f"t{i - 1} + 1"}
    spec["entrypoints"]["chain"] = [f"t{count - 1}"]
    return spec


def test_too_many_terms_is_one_line(tmp_path):
    from omgen import limits

    path = write_yaml(tmp_path / "spec.yaml", _many_terms(limits.MAX_TERMS + 1))
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert status == 1 and "more than" in err and "Traceback" not in err, err


def test_terms_at_the_limit_import_and_run(tmp_path):
    """Whatever the limits admit compiles to a module that imports and runs (a chain of MAX_TERMS terms)."""
    from omgen import limits

    count = limits.MAX_TERMS - 3  # the base spec's own terms
    path = write_yaml(tmp_path / "spec.yaml", _many_terms(count))
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"), "-q")
    assert status == 0, err
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(tmp_path / 'o')!r})
        from toy import base
        out = base.Chain()(torch.zeros(1, 1, 2, 2))
        assert float(out["t{count - 1}"].max()) == {count}, out
        session = base.Session(); session.bind(heat_logits=torch.zeros(1, 1, 2, 2))
        session.set_terms({{"t0": torch.ones(1)}})
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


def test_super_chain_beyond_the_limit(tmp_path):
    from omgen import limits

    spec = base_spec()
    names = [f"m{i}" for i in range(limits.MAX_SUPER_CHAIN + 1)]
    for name in names:
        spec["mixins"][name] = {"terms": {"loss": {"expr": "2.0 * super()"}}}
    spec["variants"]["deep"] = names
    path = write_yaml(tmp_path / "spec.yaml", spec)
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    assert status == 1 and "more than" in err and "Traceback" not in err, err


def test_too_many_mixins(tmp_path):
    spec = base_spec()
    names = [f"m{i}" for i in range(1000)]
    for name in names:
        spec["mixins"][name] = {"terms": {f"extra_{name}": {"expr": "points", "new": True}}}
    spec["variants"]["many"] = names
    path = write_yaml(tmp_path / "spec.yaml", spec)
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"))
    assert status == 1 and "more than" in err and "Traceback" not in err, err


def test_long_base_chain(tmp_path):
    spec = base_spec()
    for i in range(3000):
        spec["blocks"][f"B{i}"] = {"bases": [f"B{i + 1}"] if i < 2999 else [], "terms": {}}
    path = write_yaml(tmp_path / "spec.yaml", spec)
    status, err = run_child("compile", str(path), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "nested more than")


def test_include_file_name_with_a_newline(tmp_path):
    lib = tmp_path / "lib\nimport os\n.yaml"
    lib.write_text(yaml.safe_dump({"blocks": {"Extra": {"terms": {"extra": {"expr": "points * 2"}}}}}))
    spec = base_spec()
    spec["include"] = [lib.name]
    spec["blocks"]["Losses"]["bases"] = ["Prediction", "Extra"]
    spec["entrypoints"]["extra"] = ["extra"]
    path = write_yaml(tmp_path / "spec.yaml", spec)
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"), "-q")
    modules = judge(status, err, tmp_path / "o")
    assert status == 0 and "base" in modules, err
    assert "\\nimport os\\n" in (tmp_path / "o" / "toy" / "base.py").read_text()


def test_lone_surrogate_in_a_python_spec_docstring(tmp_path):
    source = (ROOT / "tests" / "fixtures" / "python_specs" / "toy_peaks.py").read_text()
    path = tmp_path / "spec.py"
    path.write_text(source.replace('"""', '"""\\ud800 ', 1))
    status, _, err = run_omgen("compile", str(path), "-o", str(tmp_path / "o"))
    judge(status, err, tmp_path / "o")
    package = tmp_path / "o" / "toy_peaks"
    assert status == 1 or sorted(p.name for p in package.glob("*.py"))  # never a half-written package


def test_output_folder_problems_are_one_line(tmp_path):
    spec = write_yaml(tmp_path / "spec.yaml", base_spec())
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "below"):
        status, _, err = run_omgen("compile", str(spec), "-o", str(out))
        assert_one_line_refusal(status, err)


def test_symlinked_package_is_not_written_through(tmp_path):
    spec = write_yaml(tmp_path / "spec.yaml", base_spec())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "toy").symlink_to(tmp_path / "elsewhere")
    status, _, err = run_omgen("compile", str(spec), "-o", str(tmp_path / "o"))
    assert_one_line_refusal(status, err, "symbolic link")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_planted_fifo_in_the_output_is_not_read(tmp_path):
    spec = write_yaml(tmp_path / "spec.yaml", base_spec())
    (tmp_path / "o" / "toy").mkdir(parents=True)
    os.mkfifo(tmp_path / "o" / "toy" / "base.py")
    status, err = run_child("compile", str(spec), "-o", str(tmp_path / "o"), timeout=30)
    assert_one_line_refusal(status, err, "did not write")
