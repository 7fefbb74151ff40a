"""Every command in README.md and docs/*.md works as written.

The fenced code blocks of the docs are scanned for command lines (``omgen``,
``python -m omgen``, ``python -m train``, ``python -m train.centernet``,
``bash scripts/...``). Compiler commands run for real in a temporary copy of
the specs and generated code (they take seconds); training-CLI commands need
data or minutes of training, so they are parsed by the very argparse parser
the command uses (a renamed or misspelt flag, a bad choice, a missing
argument fails) and every config or spec file they name must exist; shell
scripts must exist. What is not run is listed in SKIPPED_BY_DESIGN with its
reason.
"""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PREFIXES = ("omgen ", "python -m omgen ", "python -m train", "bash scripts/")
SHELL_VARIABLES = {"$v": "base"}  # a loop variable in docs/centernet-radius.md
SKIPPED_BY_DESIGN = {
    "scripts/demo.sh": "the demo installs and trains for minutes (it is what CI's stop runs as the main job)",
    "scripts/test.sh": "the test command itself",
    "scripts/gpu_check.sh": "needs a CUDA GPU",
}


def documented_commands():
    """(doc file name, line, command) for each command line of a fenced block (continuations joined)."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
            first_line = text.count("\n", 0, block.start(1)) + 1
            for offset, line in enumerate(block.group(1).replace("\\\n", " ").splitlines()):
                line = line.strip().removeprefix("$ ")
                if line.startswith(PREFIXES):
                    found.append((doc.name, first_line + offset, line))
    return found


def argv_of(command: str):
    for name, value in SHELL_VARIABLES.items():
        command = command.replace(name, value)
    return shlex.split(command, comments=True)


def is_synopsis(argv) -> bool:
    """A usage line (``{train,eval}``, ``[--set k=v ...]``), not a command to run."""
    return any(t.startswith(("{", "[")) or t == "..." for t in argv)


def check_training_command(argv) -> None:
    """Parse a `python -m train[.centernet] ...` command with the CLI's own parser (no training) and check that
    the config and spec files it names exist. AssertionError / SystemExit on a bad command."""
    from train.cli import _parser

    module = argv[2]
    assert module in ("train", "train.centernet"), f"unknown module {module}"
    parser = _parser(f"python -m {module}", "detection" if module == "train.centernet" else None)
    try:
        parser.parse_args(argv[3:])
    except SystemExit as exc:
        raise AssertionError(f"argparse refused it (exit {exc.code})") from None
    for token in argv[3:]:
        value = token.split("=", 1)[-1]
        if value.endswith((".yaml", ".yml", ".py")) and not value.startswith(("/", "runs/")):
            assert (ROOT / value).is_file(), f"{value}: no such file in the checkout"


def workspace(tmp: Path) -> Path:
    """A copy of what compiler commands read and write: specs/, generated/, docs/ (they write docs/om)."""
    for name in ("specs", "generated"):
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "docs").mkdir()
    return tmp


COMMANDS = documented_commands()


def test_the_docs_hold_commands_of_every_kind():
    kinds = {argv_of(c)[0] + " " + argv_of(c)[1] if argv_of(c)[0] == "python" else argv_of(c)[0] for _, _, c in COMMANDS}
    assert {"omgen", "python -m", "bash"} <= kinds, kinds
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize("doc, line, command", COMMANDS, ids=[f"{d}:{n}" for d, n, _ in COMMANDS])
def test_documented_command_works_as_written(doc, line, command, tmp_path):
    argv = argv_of(command)
    where = f"{doc}:{line}: {command}"
    if is_synopsis(argv):
        pytest.skip(f"{where}: a usage synopsis")
    if argv[0] == "bash":
        assert (ROOT / argv[1]).is_file(), f"{where}: no {argv[1]}"
        pytest.skip(f"{where}: {SKIPPED_BY_DESIGN[argv[1]]}")
    if argv[:3] in (["python", "-m", "train"], ["python", "-m", "train.centernet"]):
        try:
            check_training_command(argv)
        except AssertionError as exc:
            pytest.fail(f"{where}: {exc}")
        return
    # the compiler: run it in a copy of the checkout's specs and generated code
    if argv[0] == "omgen":
        argv = ["python", "-m", "omgen", *argv[1:]]
    argv = [a.replace("/tmp/", str(tmp_path) + "/") for a in argv]
    cwd = workspace(tmp_path / "checkout")
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("command, why", [
    ("python -m train export --checkpoint runs/demo/last.pt --formats ts", "a renamed flag"),
    ("python -m train export --checkpoint runs/demo/last.pt --format ts,onnx", "a format that does not exist"),
    ("python -m train train train/configs/no_such_config.yaml", "a renamed config"),
    ("python -m train evaluate train/configs/synthetic_demo.yaml", "a renamed command"),
])
def test_the_check_fails_on_a_broken_command(command, why):
    with pytest.raises(AssertionError):
        check_training_command(argv_of(command))


def test_a_compiler_command_with_a_renamed_flag_fails(tmp_path):
    cwd = workspace(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "omgen", "graph", "specs/panoptic.yaml", "--fmt", "mermaid"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
