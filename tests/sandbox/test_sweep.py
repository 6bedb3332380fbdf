"""The orphan sweep touches only what is provably ours and provably orphaned: gVisor
processes recorded in our own ledger that the engine no longer knows. Other gVisor users'
sandboxes on the same machine, even ones whose paths look like Docker's, are never signalled."""

from __future__ import annotations

import os

import pytest

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.sandbox.docker.sweep import stray_gvisor_processes, sweep_orphans
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
DEAD_OWNER = "1-0-deadbeef@" + os.uname().nodename  # pid 1 never started at tick 0


def test_a_gvisor_sandbox_that_is_not_ours_is_never_killed(
    engine, tmp_path, foreign_gvisor_sandbox
):
    _, process = foreign_gvisor_sandbox
    with SandboxRunner(backend=DockerBackend(engine), state_dir=tmp_path / "state") as runner:
        assert runner.run(EvalRequest(code="print(1)")).stdout == "1\n"
        assert stray_gvisor_processes(engine, runner.work_dir.parent) == []
        sweep_orphans(engine, runner.work_dir.parent, everything=True)
    assert process.poll() is None, "the sweep killed another user's gVisor sandbox"


def test_a_foreign_gvisor_sandbox_our_ledger_records_and_the_engine_forgot_is_killed(
    engine, tmp_path, foreign_gvisor_sandbox
):
    container_id, process = foreign_gvisor_sandbox
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
