"""Killing a whole executor node under load: every evaluation still ends with a result."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from crucible_ray import EvalRequest
from crucible_ray.cluster import local
from crucible_ray.reasons import Reason
from tests.conftest import live_sandboxes, wait_for

pytestmark = pytest.mark.docker
LOAD = 120
EXECUTOR_LOST = Reason.EXECUTOR_LOST.sentence


def test_killing_an_executor_node_mid_load_loses_nothing(cluster, make_client, sandbox_backend):
    client = make_client(slots_per_actor=1, min_actors=4, max_actors=4, max_pending=LOAD)
    assert wait_for(lambda: client.stats()["slots_ready"] == 4)
    code = "import time\ntime.sleep(0.3)\nprint({})"
    ids = [client.submit(EvalRequest(code=code.format(i), timeout_s=20)) for i in range(LOAD)]

    def finished() -> int:
        counters = client.stats()["counters"]
        return sum(v for k, v in counters.items() if k.startswith("finished_"))

    assert wait_for(lambda: finished() >= 15, timeout_s=120)
    victim = next(n for n in cluster.nodes if n["role"] == "executor" and not n.get("stopped"))
    before = {e["actor_id"]: e["owner"] for e in client.stats()["executors"]}
    sandboxes_before = {sandbox: owner for owner in before.values()
                        for sandbox in live_sandboxes(sandbox_backend, owner)}  # fmt: skip
    local.kill_executor(cluster, victim)  # raylet, agents and actor workers, all SIGKILLed

    results = {i: client.result(i, timeout_s=300) for i in ids}
    statuses = Counter(r.status for r in results.values())
    assert all(r.status.is_final for r in results.values()), statuses
    assert set(statuses) <= {"succeeded", "error"}, statuses
    for i, eval_id in enumerate(ids):
        result = results[eval_id]
        if result.status == "succeeded":
            assert result.stdout == f"{i}\n"
        else:  # a stable code and sentence; no Ray traceback, pid or node address
            assert (result.error_code, result.error) == ("executor_lost", EXECUTOR_LOST), result
    stats = client.stats()
    assert stats["counters"]["executors_lost"] >= 1
    assert stats["counters"].get("retried", 0) >= 1
    assert statuses["succeeded"] >= LOAD - 4  # only work lost twice may end as error
    print(f"after the node kill: {dict(statuses)}, counters {stats['counters']}")

    # No sandbox of the dead actors is left behind: judged by the ids seen before the kill, not
    # by the sweep's own idea of an orphan.
    lost_owners = {before[a] for a in set(before) - {e["actor_id"] for e in stats["executors"]}}
    assert lost_owners, "no executor was lost: the check below would prove nothing"
    theirs = {i for i, owner in sandboxes_before.items() if owner in lost_owners}
    assert theirs, "the lost executors had no sandbox: the check below would prove nothing"

    def left_behind() -> set[str]:
        return {i for i in theirs if i in live_sandboxes(sandbox_backend, sandboxes_before[i])}

    assert wait_for(lambda: left_behind() == set(), timeout_s=60), left_behind()
    local.add_executor(cluster)  # give the node back for whatever runs next
    assert wait_for(lambda: client.stats()["slots_ready"] == 4, timeout_s=120)
    time.sleep(0.5)
