"""The sandbox seam holds: nothing above ``crucible_ray/sandbox/backend.py`` knows Docker.

Every module outside the places that *are* Docker (its backend package, the Docker image
builder and the image tools that save and load Docker images, host setup, doctor and the CLI
commands that drive them) is read for its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "crucible_ray"
DOCKER_SIDE = (
    "sandbox/docker/",
    "images/build.py",
    "images/inventory.py",
    "images/transfer.py",
    "host.py",
    "doctor.py",
    "cli/",
)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


ABOVE_THE_SEAM = sorted(
    p for p in PACKAGE.rglob("*.py")
    if not str(p.relative_to(PACKAGE)).startswith(DOCKER_SIDE)
)  # fmt: skip


def test_the_layer_list_is_not_empty():
    names = {str(p.relative_to(PACKAGE)) for p in ABOVE_THE_SEAM}
    assert {"sandbox/runner.py", "sandbox/pool.py", "execution/executor.py",
            "execution/dispatcher.py", "api/app.py"} <= names  # fmt: skip


@pytest.mark.parametrize("path", ABOVE_THE_SEAM, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_above_the_seam_imports_docker(path):
    prefixes = ("docker.", "crucible_ray.sandbox.docker")
    docker = {n for n in imported(path) if n == "docker" or n.startswith(prefixes)}
    assert not docker, f"{path.name} imports {docker}: go through SandboxBackend"
