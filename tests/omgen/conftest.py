import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec text (dedented) to tmp_path/<name> and return its path."""
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path
    return write
