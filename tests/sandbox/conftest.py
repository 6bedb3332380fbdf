"""The sandbox conformance suite's fixtures: every test that takes ``backend_name``, ``runner``
or ``make_runner`` runs once per backend in CONFORMANCE_BACKENDS, against the real thing (Docker
with gVisor; runsc driven directly). A backend that fails one of them is not shipped."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crucible_ray import CrucibleError, SandboxPolicy, SandboxRunner
from crucible_ray.languages import IMAGES
from crucible_ray.sandbox import SandboxBackend, make_backend
from crucible_ray.sandbox.docker import DockerBackend
from tests.conftest import _unavailable, wait_for

CONFORMANCE_BACKENDS = ("docker", "runsc")


@pytest.fixture(scope="session", params=CONFORMANCE_BACKENDS)
def backend_name(request) -> str:
    return request.param


def new_backend(name: str, engine: Any = None) -> SandboxBackend:
    return DockerBackend(engine) if name == "docker" else make_backend(name)


@pytest.fixture(scope="session")
def checked_backend(backend_name, request) -> str:
    """The backend is usable here with every image built and signed (CI: fails, never
    skips)."""
    engine = request.getfixturevalue("engine") if backend_name == "docker" else None
    backend = new_backend(backend_name, engine)
    try:
        backend.check(SandboxPolicy(backend=backend_name))
        for spec in IMAGES.values():
            backend.image(spec)
            backend.require_signed(spec)  # as every runner will before it boots one
    except CrucibleError as exc:
        _unavailable(f"{backend_name}: {exc}")
    return backend_name


@pytest.fixture(scope="session")
def runner(checked_backend) -> Iterator[SandboxRunner]:
    """A gVisor runner with one warm Python sandbox, shared by the conformance tests."""
    policy = SandboxPolicy(backend=checked_backend)
    with SandboxRunner(policy, warm={"python": 1}) as runner:
        yield runner


@pytest.fixture
def make_runner(checked_backend, tmp_path) -> Iterator[Callable[..., SandboxRunner]]:
    """Started runners of this test's backend (``policy`` fields as keywords); closed after."""
    made: list[SandboxRunner] = []

    def make(warm: int | dict[str, int] = 0, state_dir: Path | None = None,
             **policy: Any) -> SandboxRunner:  # fmt: skip
        runner = SandboxRunner(SandboxPolicy(backend=checked_backend, **policy), warm=warm,
                               state_dir=state_dir or tmp_path / f"state-{len(made)}")  # fmt: skip
        made.append(runner)
        return runner.start()

    yield make
    for runner in made:
        runner.close()


@pytest.fixture(scope="session")
def runc_runner(engine) -> Iterator[SandboxRunner]:
    """The explicit, weaker runc path of the Docker backend (proves the seccomp profile applies
    there too); runsc has no runc."""
    with SandboxRunner(SandboxPolicy(runtime="runc"), backend=DockerBackend(engine)) as runner:
        yield runner


@pytest.fixture
def foreign_gvisor_sandbox(tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Another gVisor user's sandbox on this machine: ``runsc do`` with a state directory whose
    path looks like a Docker bundle (``.../moby/<64 hex>``), as another engine's would. No
    backend's sweep may ever touch it."""
    logs = []
    for attempt in range(3):  # a loaded machine has seen `runsc do` stall at start; retry afresh
        container_id = secrets.token_hex(32)  # each attempt its own state: nothing left to share
        root, log = tmp_path / "moby" / container_id, tmp_path / f"runsc-do-{attempt}"
        logs.append(log)
        process = subprocess.Popen(
            ["runsc", "--root", str(root), "--network=none", "--debug",
             f"--debug-log={log}/", "do", "sleep", "120"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if _started_or_gone(process) and process.poll() is None:
            break
        _kill_group(process)  # slow or failed: never leave a second sandbox of ours running
    assert process.poll() is None, "\n".join(_tail(log) for log in logs)
    yield container_id, process
    _kill_group(process)  # the sweep may have killed it already (test 2)


def _tail(log_dir: Path) -> str:
    files = sorted(log_dir.glob("*")) if log_dir.is_dir() else []
    return "\n".join(f"{f.name}: {f.read_text(errors='replace')[-600:]}" for f in files)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _started_or_gone(process: subprocess.Popen) -> bool:
    return wait_for(lambda: gvisor_sandbox_started(process.pid) or process.poll() is not None, 30)


def gvisor_sandbox_started(pid: int) -> bool:
    """Whether ``runsc`` (pid) has a child: its sandbox, started and not yet gone."""
    # Any of the Go process's threads may have forked the sandbox: a thread's `children` file
    # lists only the children that thread made (the main thread's alone was a flaky check).
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # a thread that ended between glob and read
            if children.read_text().split():
                return True
    return False
