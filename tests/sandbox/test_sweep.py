"""The orphan sweep touches only what is provably ours and provably orphaned: gVisor
processes recorded in our own ledger that the engine no longer knows. Other gVisor users'
sandboxes on the same machine, even ones whose paths look like Docker's, are never signalled."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.sandbox.docker.sweep import stray_gvisor_processes, sweep_orphans
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
DEAD_OWNER = "1-0-deadbeef@" + os.uname().nodename  # pid 1 never started at tick 0


@pytest.fixture
def gvisor_sandbox(tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real gVisor sandbox that is not Docker's: ``runsc do`` with a state directory whose
    path looks like a Docker bundle (``.../moby/<64 hex>``), as another engine's would."""
    container_id = secrets.token_hex(32)
    root = tmp_path / "moby" / container_id
    log = tmp_path / "runsc-do.log"
    for _ in range(2):  # a loaded machine has seen `runsc do` give up once; never twice
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["runsc", "--root", str(root), "--network=none", "do", "sleep", "120"],
                start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if _started_or_gone(process) and process.poll() is None:
            break
        _kill_group(process)  # slow or failed: never leave a second sandbox with this id
    assert process.poll() is None, log.read_text()[-2000:]
    yield container_id, process
    _kill_group(process)  # the sweep may have killed it already (test 2)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _started_or_gone(process: subprocess.Popen) -> bool:
    return wait_for(lambda: _gvisor_started(process.pid) or process.poll() is not None, 60)


def _gvisor_started(pid: int) -> bool:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return children.exists() and bool(children.read_text().split())


def test_a_gvisor_sandbox_that_is_not_ours_is_never_killed(engine, tmp_path, gvisor_sandbox):
    _, process = gvisor_sandbox
    with SandboxRunner(backend=DockerBackend(engine), state_dir=tmp_path / "state") as runner:
        assert runner.run(EvalRequest(code="print(1)")).stdout == "1\n"
        assert stray_gvisor_processes(engine, runner.work_dir.parent) == []
        sweep_orphans(engine, runner.work_dir.parent, everything=True)
    assert process.poll() is None, "the sweep killed another user's gVisor sandbox"


def test_a_gvisor_sandbox_our_ledger_records_and_the_engine_forgot_is_killed(
    engine, tmp_path, gvisor_sandbox
):
    container_id, process = gvisor_sandbox
    sandboxes = tmp_path / "sandboxes"
    ledger.record(sandboxes / DEAD_OWNER, container_id)  # as prepare() records each container
    (stray,) = stray_gvisor_processes(engine, sandboxes)
    assert (stray.pid, stray.container_id) == (process.pid, container_id)
    sweep_orphans(engine, sandboxes)
    assert wait_for(lambda: process.poll() is not None, timeout_s=10)
    # Once nothing of it is left, the ledger entry and the dead owner's directory go too.
    sweep_orphans(engine, sandboxes)
    assert not (sandboxes / DEAD_OWNER).exists()


def test_a_normal_evaluation_leaves_no_ledger_entry(engine, tmp_path):
    with SandboxRunner(
        backend=DockerBackend(engine), state_dir=tmp_path, warm={"python": 1}
    ) as runner:
        assert runner.run(EvalRequest(code="print(2)")).stdout == "2\n"
        warm = ledger.recorded(runner.work_dir)
        assert len(warm) == 1  # the warm sandbox booted for the next evaluation
        assert {c["Id"] for c in engine.api.containers(filters={"id": list(warm)})} == warm
