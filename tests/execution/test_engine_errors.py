"""An engine error while a sandbox starts fails that evaluation's start, not its executor:
the executor (and every other evaluation on it) lives on, and the evaluation is retried once
on another executor. Here the real engine refuses every container (a CPU quota above what the
machine has: HTTP 400) while it answers and runs gVisor, so the node is not declared unable.
The docker backend is named because that is where this error can be provoked from outside;
the dispatcher's handling of a failed start is the same for every backend."""

from __future__ import annotations

import os

import pytest

from crucible_ray import EvalRequest
from crucible_ray.reasons import Reason
from tests.conftest import wait_for

pytestmark = pytest.mark.docker


def test_an_engine_error_while_starting_a_sandbox_does_not_take_the_executor_down(make_client):
    too_many_cpus = float(os.cpu_count() or 1) + 1  # Docker: "Range of CPUs is from 0.01 to N"
    client = make_client(slots_per_actor=1, min_actors=2, max_actors=2, warm_per_slot=0,
                         policy={"backend": "docker", "cpus": too_many_cpus})  # fmt: skip
    assert wait_for(lambda: client.stats()["slots_ready"] == 2, timeout_s=120)
    executors = {e["actor_id"] for e in client.stats()["executors"]}

    result = client.run(EvalRequest(code="print(1)"), timeout_s=120)
    assert (result.status, result.error_code) == ("error", "sandbox_start_failed"), result
    assert result.error == Reason.SANDBOX_START_FAILED.sentence  # no engine message
    stats = client.stats()
    assert stats["counters"].get("executors_lost", 0) == 0, stats["counters"]
    assert stats["counters"]["retried"] == 1  # once more, on the other executor
    assert {e["actor_id"] for e in stats["executors"]} == executors
