"""An executor that hangs (its process stopped, not dead) gets no more work, its evaluation
runs again elsewhere, and nothing waits forever: the call-timeout and the probe paths."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from crucible_ray import EvalRequest
from crucible_ray.sandbox.owners import process_start_time
from tests.conftest import wait_for

pytestmark = pytest.mark.docker


@pytest.fixture
def freeze() -> Iterator:
    """SIGSTOP an executor actor's process (a real hang: alive, silent); resumed afterwards
    if it is still the same process, so a failing test leaves nothing frozen behind."""
    frozen: list[tuple[int, str]] = []

    def stop(actor_id: str) -> int:
        from ray.util.state import get_actor

        pid = get_actor(actor_id).pid
        frozen.append((pid, process_start_time(pid)))
        os.kill(pid, signal.SIGSTOP)
        return pid

    yield stop
    for pid, started in frozen:
        if process_start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _executor_ids(client) -> set[str]:
    return {e["actor_id"] for e in client.stats()["executors"]}


def test_a_hung_executor_is_lost_and_its_evaluation_runs_elsewhere(make_client, freeze):
    # A long probe timeout: the executor call's own deadline must notice the hang here.
    client = make_client(slots_per_actor=1, min_actors=2, max_actors=2,
                         executor_call_slack_s=5, probe_timeout_s=300)  # fmt: skip
    assert wait_for(lambda: client.stats()["slots_ready"] == 2, timeout_s=120)
    code = "import time\nprint('start', flush=True)\ntime.sleep(2)\nprint('done')"
    eval_id = client.submit(EvalRequest(code=code, timeout_s=5))

    def busy() -> list[str]:
        return [e["actor_id"] for e in client.stats()["executors"] if e["busy"]]

    assert wait_for(lambda: len(busy()) == 1, timeout_s=30)
    (victim,) = busy()
    freeze(victim)

    result = client.result(eval_id, timeout_s=90)
    assert result.status == "succeeded", result
    assert result.stdout == "start\ndone\n"
    stats = client.stats()
    assert victim not in _executor_ids(client)
    assert stats["counters"]["executors_lost"] == 1
    assert stats["counters"]["retried"] == 1


def test_an_executor_that_stops_answering_its_probe_gets_no_more_work(make_client, freeze):
    client = make_client(slots_per_actor=1, min_actors=2, max_actors=2, probe_timeout_s=3)
    assert wait_for(lambda: client.stats()["slots_ready"] == 2, timeout_s=120)
    victim = sorted(_executor_ids(client))[0]
    freeze(victim)
    assert wait_for(lambda: victim not in _executor_ids(client), timeout_s=30)
    assert client.stats()["counters"]["executors_lost"] == 1
    # Work goes to the survivor and the replacement, never to the frozen one.
    ids = [client.submit(EvalRequest(code=f"print({i})", timeout_s=10)) for i in range(4)]
    results = [client.result(i, timeout_s=120) for i in ids]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)], results
    assert client.stats()["counters"]["executors_lost"] == 1
