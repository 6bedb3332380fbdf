"""crucible's metrics, read from every Ray node's metrics port (real cluster, real traffic)."""

from __future__ import annotations

import httpx
import pytest

from crucible_ray.api.auth import Signer, issue_token
from crucible_ray.monitoring import scrape, scrape_all, value
from tests.api.conftest import TEST_SECRET
from tests.conftest import wait_for

pytestmark = pytest.mark.docker


def targets(cluster, role: str | None = None) -> list[str]:
    return [f"127.0.0.1:{n['metrics_port']}" for n in cluster.nodes
            if not n.get("stopped") and role in (None, n["role"])]  # fmt: skip


@pytest.fixture(scope="module")
def traffic(service) -> None:
    """A little of everything the metrics count (once for the module)."""
    token = issue_token(Signer(TEST_SECRET), "metrics-user", 600)
    client = httpx.Client(base_url=service, timeout=120,
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    http = httpx.Client(base_url=service, timeout=120)
    for code in ("print(1)", "print(2)", "import subprocess\nprint(3)"):
        assert client.post("/api/eval?wait=true", json={"code": code}).status_code == 200
    js = {"code": "console.log(1)", "language": "javascript"}
    assert client.post("/api/eval?wait=true", json=js).json()["status"] == "succeeded"
    spin = client.post("/api/eval?wait=true", json={"code": "while True: pass", "timeout_s": 1})
    assert spin.json()["status"] == "timed_out"
    shell = client.post("/api/eval?wait=true", json={"code": "import os\nos.system('true')"})
    assert shell.json()["security"]["counts"] == {"shell_executed": 1}  # sh -c true
    denied = client.post("/api/eval?wait=true", json={"code": "import os\nos.setuid(0)"})
    assert "PermissionError" in denied.json()["stderr"]
    assert http.get("/api/eval/x").status_code == 401  # missing token
    assert http.get("/api/eval/x", headers={"Authorization": "Bearer nope"}).status_code == 401
    # Past the admission limit (16) one is refused. The sleepers outlast however slowly this
    # loop runs on a loaded machine, and are cancelled once the refusal was seen.
    admitted, refusal = [], None
    for _ in range(40):
        answer = client.post("/api/eval", json={"code": "import time\ntime.sleep(60)"})
        if answer.status_code != 202:
            refusal = answer
            break
        admitted.append(answer.json()["id"])
    assert refusal is not None and refusal.status_code == 429, refusal
    assert refusal.headers["X-Crucible-Refusal"] == "overloaded"
    for eval_id in admitted:
        assert client.delete(f"/api/eval/{eval_id}").status_code == 200
    client.close()
    http.close()


def test_every_event_is_counted_cluster_wide(cluster, traffic):
    every_node = targets(cluster)

    def counted() -> bool:
        totals = scrape_all(every_node)
        return (
            value(totals, "ray_crucible_evaluations_total", status="succeeded",
                  language="python", runtime="runsc") >= 3
            and value(totals, "ray_crucible_evaluations_total", language="javascript") >= 1
            and value(totals, "ray_crucible_timeouts_total", language="python") >= 1
            and value(totals, "ray_crucible_permission_denials_total", language="python") >= 1
            and value(totals, "ray_crucible_security_events_total", rule="shell_executed",
                      alert="container_escape_attempt", language="python") >= 1
            and value(totals, "ray_crucible_flagged_submissions_total", language="python") >= 1
            and value(totals, "ray_crucible_auth_failures_total", reason="missing") >= 1
            and value(totals, "ray_crucible_auth_failures_total", reason="invalid") >= 1
            and value(totals, "ray_crucible_rejected_total", reason="overloaded") >= 1
            and value(totals, "ray_crucible_admitted_total") >= 6
            and value(totals, "ray_crucible_http_requests_total", method="POST",
                      route="/api/eval", code="200") >= 5
            and value(totals, "ray_crucible_evaluation_duration_seconds_count") >= 5
            and value(totals, "ray_crucible_evaluation_latency_seconds_bucket", le="+Inf") >= 5
        )  # fmt: skip

    assert wait_for(counted, timeout_s=120), scrape_all(every_node)


def test_gauges_show_the_pool_and_the_limit(cluster, traffic):
    def gauges() -> bool:
        totals = scrape_all(targets(cluster))
        limits = [v for (n, _), v in totals.items() if n == "ray_crucible_admission_limit"]
        ready = value(totals, "ray_crucible_executors", state="idle") + value(
            totals, "ray_crucible_executors", state="busy"
        )
        return 16 in limits and ready >= 2 and value(totals, "ray_crucible_slots") >= 4

    assert wait_for(gauges, timeout_s=60)


def test_each_executor_node_reports_its_own_sandboxes(cluster, traffic, sandbox_backend):
    """Sandbox metrics come from the executor actors, exported by their own nodes."""
    executors = targets(cluster, "executor")
    assert len(executors) == 2

    def reported() -> bool:
        return all(value(scrape(t), "ray_crucible_sandbox_boot_seconds_count") > 0
                   for t in executors)  # fmt: skip

    assert wait_for(reported, timeout_s=90)
    waits = scrape_all(executors)
    assert value(waits, "ray_crucible_sandbox_wait_seconds_count", warm="true") > 0
    # Boots are labelled with the backend that ran them, never with the policy's "auto".
    boots = "ray_crucible_sandbox_boot_seconds_count"
    assert value(waits, boots, backend=sandbox_backend.name) == value(waits, boots) > 0
    (head,) = targets(cluster, "head")  # the ingress and the dispatcher live off executor nodes
    assert value(scrape(head), "ray_crucible_http_requests_total") > 0
    assert all(value(scrape(t), "ray_crucible_http_requests_total") == 0 for t in executors)
