"""The task interface: one CLI for every task, one schema per task, no import cycle in train/."""
import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from runtime.config import ConfigError, load_config
from train.cli import CONFIG_DIR, main
from train.tasks import TASKS, task_of
from train.tasks.base import fresh_dir
from train.tasks.schema import validate

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path, package: str) -> set:
    """Every module of ``train`` that a file imports, function-level imports included."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in found if m == "train" or m.startswith("train.")}


def test_no_import_cycle_in_train():
    graph = nx.DiGraph()
    files = {}
    for path in (ROOT / "train").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        name = ".".join(parts)
        files[name] = (path, name if is_pkg else ".".join(parts[:-1]))
    for name, (path, package) in files.items():
        graph.add_node(name)
        for mod in _imports(path, package):
            while mod not in files and "." in mod:
                mod = mod.rsplit(".", 1)[0]
            if mod in files and mod != name and not name.startswith(mod + "."):
                graph.add_edge(name, mod)
    cycles = [c for c in nx.simple_cycles(graph) if not all(n in ("train", "train.__main__") for n in c)]
    assert cycles == []


def test_every_shipped_config_names_its_task_and_passes_its_schema():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.get("task") in TASKS, path.name
        validate(cfg, task_of(cfg), str(path))


def test_old_configs_without_task_pick_it_from_the_spec():
    assert task_of({"om": {"spec": "specs/centernet.yaml"}}).name == "detection"
    assert task_of({"om": {"spec": "specs/panoptic.yaml"}}).name == "panoptic"
    assert task_of({}).name == "panoptic"


@pytest.mark.parametrize("key, hint", [
    ("data.flip_prb=0.3", "unknown key 'data.flip_prb' for task panoptic; did you mean data.flip_prob?"),
    ("train.stepz=3", "unknown train settings key 'train.stepz' for task panoptic; did you mean train.steps?"),
    ("modle.arch=small", "unknown key 'modle'; did you mean model?"),
    ("eval.min_score=0.1", "unknown key 'eval.min_score' for task panoptic"),
])
def test_unknown_key_is_one_line_with_did_you_mean(key, hint, capsys):
    assert main(["train", str(CONFIG_DIR / "synthetic_demo.yaml"), "--set", key]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and hint in err and "synthetic_demo.yaml" in err


def test_a_key_of_another_task_is_refused():
    cfg = load_config(CONFIG_DIR / "centernet_synthetic.yaml", ["model.arch=small"])
    with pytest.raises(ConfigError, match="model.arch' for task detection"):
        validate(cfg, task_of(cfg))
    with pytest.raises(ConfigError, match="task: unknown 'detect'.*did you mean detection"):
        task_of({"task": "detect"})


def test_fresh_dir_never_reuses_a_run(tmp_path):
    run = tmp_path / "run"
    assert fresh_dir(run) == run
    run.mkdir()
    (run / "data").mkdir()  # a dataset folder is not a run
    assert fresh_dir(run) == run
    (run / "metrics.jsonl").write_text("")
    assert fresh_dir(run) == tmp_path / "run-2"
    assert fresh_dir(run, reuse=True) == run
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "last.pt").write_text("")
    assert fresh_dir(run) == tmp_path / "run-3"


def test_version_help_and_exit_codes(capsys):
    from train.cli import main

    run = subprocess.run([sys.executable, "-m", "train", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "omgen" in run.stdout and run.stdout.strip().split()[-1][0].isdigit()
    for command in ("", "train", "eval", "export", "demo", "info"):  # in process: the same parser, no torch import
        with pytest.raises(SystemExit) as exit_:
            main([*([command] if command else []), "--help"])
        assert exit_.value.code == 0 and "0 ok, 1 config / spec / data error" in capsys.readouterr().out, command
    with pytest.raises(SystemExit) as exit_:  # a usage error: argparse's exit code (the subprocess above shows
        main(["train"])                          # `python -m train` exits with main's code)
    assert exit_.value.code == 2 and "required: config" in capsys.readouterr().err


def test_every_option_has_help():
    from train.cli import _parser

    parser = _parser()
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    for name, sub in subs.choices.items():
        for action in sub._actions:
            assert action.help, (name, action.option_strings or action.dest)
    assert all(a.help for a in parser._actions if a.option_strings)


def test_every_omgen_option_has_help():
    from omgen.cli import _parser

    parser = _parser()
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"][0]
    for name, sub in subs.choices.items():
        for action in sub._actions:
            assert action.help, (name, action.option_strings or action.dest)
    assert all(a.help for a in parser._actions if a.option_strings)
