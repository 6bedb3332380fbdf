"""The queue plane on the session's real cluster, real sandboxes and a real PostgreSQL:
executors pull from the durable queue through Dispatch actors; killing an executor or a
Dispatch actor mid-load loses nothing and ends nothing as an error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import ray

from crucible_ray import EvalRequest
from crucible_ray.execution.client import stop_dispatcher
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.queue_client import (
    QueueClient,
    start_queue_plane,
    stop_queue_plane,
)
from crucible_ray.judge.models import JudgeRequest
from crucible_ray.settings import Settings
from crucible_ray.topology import NAMESPACE
from tests.conftest import wait_for
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.docker
QUEUE = {"lease_ttl_s": 3.0, "retry_backoff_s": 0.2}  # a lost executor is noticed in seconds


@pytest.fixture
def plane(cluster, postgres_url, tmp_path) -> Iterator[object]:
    stop_dispatcher()  # the old plane's executors would hold the slots
    state = tmp_path / "state"
    url = fresh_database(postgres_url, "queue_plane")
    Settings(state_dir=state, database_url=url).write_shared_secrets()
    config = DispatcherConfig(slots_per_actor=2, min_actors=2, max_actors=2,
                              store_state_dir=str(state), store_needs_database_url=True,
                              scale_interval_s=0.5, max_pending=64)  # fmt: skip
    supervisor = start_queue_plane(config, dispatchers=2, queue=QUEUE)
    assert wait_for(lambda: ray.get(supervisor.stats.remote())["ready"] == 2, timeout_s=120)
    yield supervisor
    stop_queue_plane()


def run_load(client: QueueClient, count: int, code: str, **request) -> list[str]:
    requests = [EvalRequest(code=code.format(i), timeout_s=30, **request) for i in range(count)]
    return client.submit_many(requests)


def test_work_of_two_users_runs_to_real_results(plane):
    alice, bob = QueueClient("alice"), QueueClient("bob")
    ids = {"alice": run_load(alice, 6, "print({} * 7)"), "bob": run_load(bob, 6, "print({})")}
    for user, client, factor in (("alice", alice, 7), ("bob", bob, 1)):
        for i, eval_id in enumerate(ids[user]):
            result = client.result(eval_id, timeout_s=120)
            assert (result.status, result.stdout) == ("succeeded", f"{i * factor}\n"), result
            assert result.backend and result.runtime
    assert alice.result(ids["bob"][0]) is None  # another user's is not found
    assert alice.depth() == {"queued": 0, "running": 0, "users": 0}


def test_judged_submissions_ride_the_same_queue(plane):
    client = QueueClient("erin")
    tests = [{"stdin": f"{i}\n", "expected_stdout": f"{2 * i}\n"} for i in range(3)]
    right = client.judge(JudgeRequest(code="print(int(input()) * 2)", tests=tests))
    wrong = client.judge(JudgeRequest(code="print(int(input()) + 2)", tests=tests))
    judged = client.result(right, timeout_s=120)
    assert (judged.status, judged.verdict, judged.passed) == ("succeeded", "AC", 3), judged
    assert client.result(wrong, timeout_s=120).verdict == "WA"


def test_a_running_evaluation_is_cancelled(plane):
    client = QueueClient("carol")
    [eval_id] = run_load(client, 1, "import time\ntime.sleep(60)\nprint({})")
    assert wait_for(lambda: client.result(eval_id).status == "running", timeout_s=60)
    assert client.cancel(eval_id) == "requested"
    result = client.result(eval_id, timeout_s=60)
    assert result.status == "cancelled", result


def test_killing_an_executor_and_a_dispatch_actor_mid_load_loses_nothing(plane):
    client = QueueClient("dave")
    load = 24
    ids = run_load(client, load, "import time\ntime.sleep(1.5)\nprint({})")

    def busy_executor() -> str | None:
        running = ray.get(plane.stats.remote())["executors"]
        return next((name for name, count in running.items() if count), None)

    assert wait_for(lambda: busy_executor() is not None, timeout_s=60)
    victim = busy_executor()  # it holds leased work: killing it loses that work's runs
    ray.kill(ray.get_actor(victim, namespace=NAMESPACE), no_restart=True)
    ray.kill(ray.get_actor("crucible-dispatch-0", namespace=NAMESPACE), no_restart=False)
    results = [client.result(eval_id, timeout_s=180) for eval_id in ids]
    statuses = Counter(r.status for r in results)
    assert statuses == {"succeeded": load}, statuses  # none `error` because of the kills
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(load)]
    stats = ray.get(plane.stats.remote())
    assert stats["counters"]["executors_lost"] >= 1, stats  # the kill was noticed...
    assert stats["counters"]["expired"] >= 1, stats  # ...its leased work queued again...
    healed = lambda: ray.get(plane.stats.remote())["ready"] == 2  # noqa: E731
    assert wait_for(healed, timeout_s=120)  # ...and the executor replaced
