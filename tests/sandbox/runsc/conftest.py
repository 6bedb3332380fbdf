"""Fixtures of the runsc backend tests: real gVisor, no Docker. Under CI=true a missing runsc
or root image fails these tests, never skips them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_ray.errors import CrucibleError
from crucible_ray.languages import LANGUAGES
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import Outcome, Program
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.runsc.backend import RunscBackend
from tests.conftest import _unavailable

PY = LANGUAGES["python"]
POLICY = SandboxPolicy(backend="runsc")
DEAD_OWNER = "1-0-deadbeef@" + os.uname().nodename  # pid 1 never started at tick 0


@pytest.fixture(scope="module", params=["erofs", "directory"])
def backend(request) -> Iterator[RunscBackend]:
    backend = RunscBackend(rootfs=request.param)
    try:
        backend.check(POLICY)
        backend.image(PY)
    except CrucibleError as exc:
        _unavailable(f"runsc: {exc}")
    yield backend
    backend.close()


@pytest.fixture
def owner_dir(tmp_path) -> Iterator[Path]:
    path = tmp_path / owner_token()
    path.mkdir()
    yield path


def run(backend: RunscBackend, owner_dir: Path, code: str, stdin: bytes = b"",
        timeout_s: float = 10, policy: SandboxPolicy = POLICY) -> Outcome:  # fmt: skip
    sandbox = backend.prepare(PY, policy, backend.image(PY), owner_dir, owner_dir.name)
    try:
        return backend.execute(sandbox, Program(code.encode(), stdin, timeout_s))
    finally:
        backend.destroy(sandbox)


def argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
