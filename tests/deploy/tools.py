"""Command-line validators the deployment tests run: found beside this Python (the venv's bin,
where pip puts them) or on PATH; missing, they skip the test, or fail it under CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def need(tool: str, package: str) -> str:
    path = shutil.which(tool, path=str(Path(sys.executable).parent)) or shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (pip install {package}, or '.[test]')"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return path


def run(tool: str, package: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need(tool, package), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
