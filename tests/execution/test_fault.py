"""Killing a whole executor node under load: every evaluation still ends with a result."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from crucible_ray import EvalRequest
from crucible_ray.cluster import local
from crucible_ray.sandbox.engine import LABEL_OWNER, owner_alive
from tests.conftest import crucible_containers, wait_for

pytestmark = pytest.mark.docker
LOAD = 120


def test_killing_an_executor_node_mid_load_loses_nothing(cluster, make_client, engine):
    client = make_client(slots_per_actor=1, min_actors=4, max_actors=4, max_pending=LOAD)
    assert wait_for(lambda: client.stats()["slots_ready"] == 4)
    code = "import time\ntime.sleep(0.3)\nprint({})"
    ids = [client.submit(EvalRequest(code=code.format(i), timeout_s=20)) for i in range(LOAD)]

    def finished() -> int:
        counters = client.stats()["counters"]
        return sum(v for k, v in counters.items() if k.startswith("finished_"))

    assert wait_for(lambda: finished() >= 15, timeout_s=120)
    victim = next(n for n in cluster.nodes if n["role"] == "executor" and not n.get("stopped"))
    local.kill_executor(cluster, victim)  # raylet, agents and actor workers, all SIGKILLed

    results = {i: client.result(i, timeout_s=300) for i in ids}
    statuses = Counter(r.status for r in results.values())
    assert all(r.status.is_final for r in results.values()), statuses
    assert set(statuses) <= {"succeeded", "error"}, statuses
    for i, eval_id in enumerate(ids):
        result = results[eval_id]
        if result.status == "succeeded":
            assert result.stdout == f"{i}\n"
        else:
            assert "executor lost" in result.error
    stats = client.stats()
    assert stats["counters"]["executors_lost"] >= 1
    assert stats["counters"].get("retried", 0) >= 1
    assert statuses["succeeded"] >= LOAD - 4  # only work lost twice may end as error
    print(f"after the node kill: {dict(statuses)}, counters {stats['counters']}")

    # No sandbox of the dead actors is left behind.
    def orphans() -> list[dict]:
        return [c for c in crucible_containers(engine)
                if not owner_alive(c["Labels"][LABEL_OWNER])]  # fmt: skip

    assert wait_for(lambda: orphans() == [], timeout_s=60), orphans()
    local.add_executor(cluster)  # give the node back for whatever runs next
    assert wait_for(lambda: client.stats()["slots_ready"] == 4, timeout_s=120)
    time.sleep(0.5)
