"""Fixtures for the deployment tests: a checkpoint in the training format and its exported program."""
from pathlib import Path

import pytest

from deploy_helpers import tiny_config, write_checkpoint


def pytest_configure(config):
    config.addinivalue_line("markers", "cpp: builds and runs the C++ example (CMake + a C++ compiler; ~1 min)")


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
