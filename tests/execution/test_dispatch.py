"""The execution layer on a real multi-node Ray cluster with real gVisor sandboxes."""

from __future__ import annotations

import time

import pytest
import ray

from crucible_ray import EvalRequest, InvalidRequest, NoExecutors, Overloaded
from crucible_ray.images.local import image_path
from crucible_ray.languages import IMAGES
from crucible_ray.topology import EXECUTOR_ROLE, ROLE_LABEL
from tests.conftest import live_sandboxes, wait_for

pytestmark = pytest.mark.docker
SLEEP = "import time\nprint('up', flush=True)\ntime.sleep({})\nprint('done')"


def node_roles() -> dict[str, str]:
    return {n["NodeID"]: n.get("Labels", {}).get(ROLE_LABEL, "") for n in ray.nodes()}


def test_evaluations_run_on_executor_nodes_only(make_client):
    client = make_client(slots_per_actor=1, min_actors=4, max_actors=4)
    results = [client.run(EvalRequest(code=f"print({i} * 2)")) for i in range(6)]
    assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(6)]
    assert all(r.status == "succeeded" and r.runtime == "runsc" for r in results)
    assert wait_for(lambda: len([e for e in client.stats()["executors"] if e["ready"]]) == 4)
    roles = node_roles()
    executors = client.stats()["executors"]
    assert {roles[e["node_id"]] for e in executors} == {EXECUTOR_ROLE}
    assert len({e["node_id"] for e in executors}) == 2  # spread over both executor nodes
    assert roles[client.stats()["node_id"]] != EXECUTOR_ROLE  # the control plane stays off them


def test_submission_is_idempotent_by_id(make_client):
    client = make_client(slots_per_actor=1)
    first = client.submit(EvalRequest(code="print('once')"), eval_id="same-id")
    second = client.submit(EvalRequest(code="print('twice')"), eval_id="same-id")
    assert first == second == "same-id"
    result = client.result("same-id", timeout_s=60)
    assert result.stdout == "once\n" and client.stats()["counters"]["admitted"] == 1


def test_invalid_requests_are_refused_with_the_field(make_client):
    client = make_client(slots_per_actor=1)
    with pytest.raises(InvalidRequest) as info:
        client.submit(EvalRequest(code="1", language="cobol"))
    assert info.value.field == "language"
    with pytest.raises(InvalidRequest) as info:
        client.submit(EvalRequest(code="x" * 200_000))
    assert info.value.field == "code"


def test_saturation_refuses_at_once_and_never_queues_beyond_the_limit(make_client):
    client = make_client(slots_per_actor=1, min_actors=2, max_actors=2, max_pending=4)
    accepted = [client.submit(EvalRequest(code=SLEEP.format(20), timeout_s=25)) for _ in range(4)]
    refusals = []
    for _ in range(6):
        started = time.monotonic()
        with pytest.raises(Overloaded) as info:
            client.submit(EvalRequest(code="print(1)"))
        refusals.append(time.monotonic() - started)
        assert info.value.retry_after_s >= 1
    stats = client.stats()
    assert stats["queued"] + stats["running"] == 4 and stats["admission_limit"] == 4
    assert stats["counters"]["rejected_overloaded"] == 6
    assert max(refusals) < 5  # refused at once, not after waiting for a slot
    for eval_id in accepted:
        client.cancel(eval_id)
    assert all(client.result(i, timeout_s=30).status == "cancelled" for i in accepted)


def test_cancellation_kills_the_running_sandbox(make_client, sandbox_backend):
    # No warm sandbox: the only container of this executor is the one the program runs in.
    client = make_client(slots_per_actor=1, min_actors=1, max_actors=1, warm_per_slot=0)
    assert wait_for(lambda: client.stats()["slots_ready"] == 1)
    (executor,) = client.stats()["executors"]

    def sandboxes() -> set[str]:
        return live_sandboxes(sandbox_backend, executor["owner"])

    assert sandboxes() == set()
    eval_id = client.submit(EvalRequest(code=SLEEP.format(60), timeout_s=30))
    assert wait_for(lambda: len(sandboxes()) == 1)
    time.sleep(1.0)
    started = time.monotonic()
    assert client.cancel(eval_id) == {"cancelled": True, "status": "cancelled"}
    result = client.result(eval_id, timeout_s=30)
    assert result.status == "cancelled" and time.monotonic() - started < 15
    # The sandbox that took the program is gone although the program would sleep 60 s.
    assert wait_for(lambda: sandboxes() == set(), timeout_s=10)
    assert client.cancel(eval_id) == {"cancelled": False, "status": "cancelled"}


def test_a_queued_evaluation_can_be_cancelled(make_client):
    client = make_client(slots_per_actor=1, min_actors=1, max_actors=1)
    busy = client.submit(EvalRequest(code=SLEEP.format(10), timeout_s=15))
    queued = client.submit(EvalRequest(code="print('never')"))
    assert client.result(queued).status == "queued"
    assert client.cancel(queued)["cancelled"]
    assert client.result(queued, timeout_s=5).status == "cancelled"
    client.cancel(busy)


def test_autoscaling_goes_up_under_load_and_back_down_when_idle(make_client):
    client = make_client(slots_per_actor=1, min_actors=1, max_actors=4, downscale_delay_s=2)
    assert wait_for(lambda: len(client.stats()["executors"]) == 1)
    ids = [client.submit(EvalRequest(code=SLEEP.format(4), timeout_s=20)) for _ in range(8)]
    assert wait_for(lambda: len(client.stats()["executors"]) == 4, timeout_s=30)
    assert all(client.result(i, timeout_s=120).status == "succeeded" for i in ids)
    assert wait_for(lambda: len(client.stats()["executors"]) == 1, timeout_s=60)
    assert client.stats()["counters"]["executors_stopped"] == 3


def test_fail_secure_when_executors_cannot_run_sandboxes(make_client):
    """An executor that cannot start gVisor sandboxes safely never starts; after repeated
    failures submissions are refused, and what was queued ends as an error."""
    client = make_client(
        slots_per_actor=1, min_actors=1, max_actors=1, queue_timeout_s=5,
        policy={"seccomp_profile": "/nonexistent/profile.json"},
    )  # fmt: skip
    queued = client.submit(EvalRequest(code="print(1)"))
    assert client.result(queued, timeout_s=30).status == "error"
    assert wait_for(lambda: client.stats()["counters"].get("executor_start_failures", 0) >= 3)
    with pytest.raises(
        NoExecutors, match=r"^no executor can take work now: executors fail to start$"
    ):
        client.submit(EvalRequest(code="print(1)"))
    assert "seccomp" in client.stats()["last_start_error"]  # the why, for operators only


def test_a_missing_image_fails_its_own_evaluations_and_nothing_else(make_client, sandbox_backend):
    """One image not built (or altered) on the executors' node: its evaluations end as
    ``image_unavailable``; the executor is not lost and runs every other image."""
    assert sandbox_backend.name == "runsc"  # auto's choice here; its root images are files
    built = image_path(IMAGES["python-science"])
    aside = built.with_name(built.name + ".aside")
    built.rename(aside)  # the fresh executor below verifies images anew: it finds none
    try:
        client = make_client(slots_per_actor=1, min_actors=1, max_actors=1)
        missing = client.run(EvalRequest(code="import numpy", image="python-science"))
        assert (missing.status, missing.error_code) == ("error", "image_unavailable"), missing
        assert (missing.language, missing.image) == ("python", "python-science")
        assert "/" not in (missing.error or "")  # a fixed sentence, never a path
        assert client.run(EvalRequest(code="print(1)")).stdout == "1\n"
        counters = client.stats()["counters"]
        assert counters.get("executors_lost", 0) == 0 and counters.get("retried", 0) == 0
    finally:
        aside.rename(built)
