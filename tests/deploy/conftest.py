"""Fixtures for the deployment tests: a checkpoint in the training format and its exported program."""
import os
from pathlib import Path

import pytest

import shutil

from deploy_helpers import tiny_config, write_checkpoint, write_task_checkpoint


def pytest_configure(config):
    config.addinivalue_line("markers", "cpp: builds and runs the C++ example (CMake + a C++ compiler; ~1 min)")
    config.addinivalue_line("markers", "aoti: compiles an AOTInductor package (a C++ compiler; ~1-2 min each)")
    config.addinivalue_line("markers", "slow: AOTInductor packages of dynamic shapes (~1-2 min each); runs with "
                                       "OMGEN_SLOW_TESTS=1 (CI compiles one package: CenterNet's for one size)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("OMGEN_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow (a dynamic-shape AOTInductor compile): set OMGEN_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def deploy_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="session")
def checkpoint(deploy_dir) -> Path:
    return write_checkpoint(deploy_dir / "last.pt", tiny_config(deploy_dir))


@pytest.fixture(scope="session")
def exported(deploy_dir, checkpoint) -> Path:
    from train.deploy import export_deployment

    return export_deployment(checkpoint, deploy_dir / "model.ts")


@pytest.fixture(scope="session")
def loaded(checkpoint):
    from train.deploy import load_checkpoint_model

    return load_checkpoint_model(checkpoint)


@pytest.fixture(scope="session")
def task_checkpoints(tmp_path_factory):
    """(task, variant) -> a checkpoint of that task's network in the training format, made once per session."""
    made = {}

    def get(task: str, variant: str) -> Path:
        if (task, variant) not in made:
            root = tmp_path_factory.mktemp(f"{task}-{variant}")
            if task == "panoptic":
                cfg = tiny_config(root)
                cfg["om"]["variant"] = variant
                made[task, variant] = write_checkpoint(root / "last.pt", cfg)
            else:
                made[task, variant] = write_task_checkpoint(task, root / "last.pt", variant=variant)
        return made[task, variant]

    return get


@pytest.fixture(scope="session")
def exported_programs(task_checkpoints, tmp_path_factory):
    """(task, variant[, kinds]) -> {"ts": path, "pt2": path} exported once per session (and per xdist worker: tests of one
    pair share a worker through their xdist_group)."""
    made = {}

    def get(task: str, variant: str, kinds: tuple = ("ts", "pt2")) -> dict:
        if (task, variant, kinds) not in made:
            from train.deploy import export_artifacts

            out = tmp_path_factory.mktemp(f"export-{task}-{variant}") / "model.ts"
            made[task, variant, kinds] = export_artifacts(task_checkpoints(task, variant), out, kinds)
        return made[task, variant, kinds]

    return get


@pytest.fixture(scope="session")
def aoti_package(task_checkpoints, tmp_path_factory):
    """(task, variant[, size]) -> its AOTInductor package (and model.ts beside it), compiled once per session:
    dynamic shapes (~1-2 min on 2 cores: Inductor simplifies symbolic index expressions) or, with ``size`` (H, W),
    the --aoti-size package for that one shape (~30 s), which is what CI compiles."""
    made = {}

    def get(task: str, variant: str, size=None) -> Path:
        if shutil.which("c++") is None and shutil.which("g++") is None:
            pytest.skip("AOTInductor needs a C++ compiler (none on PATH)")
        key = (task, variant, None if size is None else tuple(size))
        if key not in made:
            from train.deploy import export_artifacts

            out = tmp_path_factory.mktemp(f"aoti-{task}-{variant}") / "model"
            made[key] = export_artifacts(task_checkpoints(task, variant), out, ("ts", "aoti"),
                                         aoti_size=key[2])["aoti"]
        return made[key]

    return get
