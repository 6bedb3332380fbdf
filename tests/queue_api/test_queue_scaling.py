"""The ingress autoscales on the queue plane: redeployed with its shipped autoscaling config
(1-4 replicas, 8 ongoing requests each) in place of the fixed two the other tests use, a load
of long waits makes Serve add replicas, and every request is answered with its own result
while they start."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from ray import serve

from crucible_ray.api.deployment import APP_NAME, deploy
from tests.api.conftest import _healthy
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
# 48 requests in flight over a target of 8 per replica; at most 8 waits per user and replica
WAITERS, USERS = 48, 8
CODE = "import time\ntime.sleep(4)\nprint({})"


def running_replicas() -> int:
    deployment = serve.status().applications[APP_NAME].deployments["Ingress"]
    return deployment.replica_states.get("RUNNING", 0)


@pytest.mark.timeout(600)
def test_a_load_of_long_waits_adds_ingress_replicas(service, settings, as_user):
    deploy(settings)  # the shipped config: 1-4 replicas, 8 ongoing requests each
    try:
        assert wait_for(lambda: _healthy(service), timeout_s=120)
        before = running_replicas()  # the two it had, until Serve scales them in (120 s idle)
        users = [as_user() for _ in range(USERS)]
        seen = [before]

        def one(index: int) -> tuple[int, str]:
            client = users[index % USERS]
            answer = client.post("/api/eval?wait=true",
                                 json={"code": CODE.format(index), "timeout_s": 30})  # fmt: skip
            seen.append(running_replicas())
            return answer.status_code, answer.json().get("stdout", answer.text)

        with ThreadPoolExecutor(WAITERS) as pool:
            answers = list(pool.map(one, range(WAITERS)))
        assert answers == [(200, f"{i}\n") for i in range(WAITERS)]
        assert wait_for(lambda: running_replicas() > before, timeout_s=60) or max(seen) > before
        print(f"ingress replicas: {before} before the load, up to {max(seen)} during it")
    finally:  # back to the fixed two replicas the rest of the package expects
        deploy(settings, num_replicas=2)
        assert wait_for(lambda: running_replicas() == 2 and _healthy(service), timeout_s=180)
