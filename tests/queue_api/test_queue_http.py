"""The HTTP contract on the queue plane: admission is one store transaction in the ingress
replica, executors pull, waits are the replica's batched poll of the store."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.conftest import poll
from tests.api.test_http import (  # noqa: F401 (the same contract, run on this plane's service)
    test_no_executor_means_503_until_executors_return,
)
from tests.conftest import wait_for
from tests.queue_api.conftest import USER_LIMIT
from tests.support.audit import audit_events

pytestmark = pytest.mark.docker


def test_health_names_the_queue_plane_and_its_executors(http, token_for):
    assert wait_for(lambda: http.get("/healthz").json()["executors"] >= 2, timeout_s=60)
    operator = {"Authorization": f"Bearer {token_for('ops', roles=['operator'])}"}
    stats = http.get("/api/dashboard", headers=operator).json()["dispatcher"]
    assert stats["plane"] == "queue"
    assert {e["slots"] for e in stats["executors"]} == {2}


def test_submit_then_long_poll(as_user):
    alice = as_user()
    answer = alice.post("/api/eval", json={"code": "import os\nprint(6 * 7)",
                                           "metadata": {"task": "t1"}})  # fmt: skip
    assert answer.status_code == 202, answer.text
    eval_id = answer.json()["id"]
    result = alice.get(f"/api/eval/{eval_id}?wait=50").json()
    assert (result["status"], result["stdout"]) == ("succeeded", "42\n"), result
    assert result["metadata"] == {"task": "t1"}
    assert result["warnings"] == ["imports os (operating system)"]
    assert as_user().get(f"/api/eval/{eval_id}").status_code == 404  # not another user's


def test_wait_true_answers_with_the_final_result(as_user):
    answer = as_user().post(
        "/api/eval?wait=true", json={"code": "console.log('js')", "language": "javascript"}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["stdout"]) == ("succeeded", "js\n")


def test_batch_is_admitted_whole_with_invalid_items_ended(as_user):
    bob = as_user()
    items = [{"code": f"print({i})"} for i in range(2)] + [{"code": "print(1)", "timeout_s": 999}]
    answer = bob.post("/api/batch", json={"items": items})
    assert answer.status_code == 202, answer.text
    batch_id, ids = answer.json()["batch_id"], answer.json()["ids"]
    assert len(ids) == 3
    assert wait_for(lambda: bob.get(f"/api/batch/{batch_id}").json()["done"], timeout_s=90)
    lines = bob.get(f"/api/batch/{batch_id}/results").text.splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["stdout"] for r in results[:2]] == ["0\n", "1\n"]
    assert (results[2]["status"], results[2]["error_code"]) == ("error", "invalid_request")
    assert "timeout_s" in results[2]["error"]


def test_a_batch_over_the_users_limit_is_refused_whole(as_user):
    carol = as_user()
    items = [{"code": "print(1)"}] * (USER_LIMIT + 1)
    answer = carol.post("/api/batch", json={"items": items})
    assert answer.status_code == 429, answer.text
    assert answer.headers["X-Crucible-Refusal"] == "overloaded"
    assert carol.get("/api/me/export").json() == []  # nothing recorded


def test_invalid_single_submission_is_422_and_not_recorded(as_user):
    dave = as_user()
    answer = dave.post("/api/eval", json={"code": "print(1)", "timeout_s": 999})
    assert answer.status_code == 422, answer.text
    assert "timeout_s" in answer.text
    assert dave.get("/api/me/export").json() == []  # nothing recorded


def test_idempotency_key_returns_the_same_evaluation(as_user):
    erin = as_user()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = erin.post("/api/eval", json={"code": "print('once')"}, headers=key)
    again = erin.post("/api/eval?wait=true", json={"code": "print('once')"}, headers=key)
    assert first.status_code == 202 and again.status_code == 200, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"] and again.json()["stdout"] == "once\n"
    other = erin.post("/api/eval", json={"code": "print('twice')"}, headers=key)
    assert other.status_code == 422


def test_cancel_a_running_evaluation(as_user):
    frank = as_user()
    code = "import time\nprint('started', flush=True)\ntime.sleep(30)"
    eval_id = frank.post("/api/eval", json={"code": code, "timeout_s": 35}).json()["id"]
    assert wait_for(lambda: frank.get(f"/api/eval/{eval_id}").json()["status"] == "running",
                    timeout_s=60)  # fmt: skip
    answer = frank.delete(f"/api/eval/{eval_id}")
    assert answer.status_code == 200, answer.text
    result = poll(frank, eval_id, timeout_s=30)
    assert result["status"] == "cancelled", result
    assert frank.delete(f"/api/eval/{eval_id}").status_code == 409


def test_judge_on_the_queue_plane(as_user):
    grace = as_user()
    body = {"code": "print(int(input()) * 2)", "mode": "stdio",
            "tests": [{"stdin": "2\n", "expected_stdout": "4\n"},
                      {"stdin": "5\n", "expected_stdout": "10\n"}]}  # fmt: skip
    answer = grace.post("/api/judge?wait=true", json=body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["verdict"], answer.json()["passed"]) == ("AC", 2)


def test_audit_names_who_sent_what_at_admission_and_the_outcome_at_the_end(as_user):
    """The end's event is written by a Dispatch actor, which never sees the client: the
    replica's ``admitted`` event carries the client and the code's hash, under the same id."""
    client = as_user()
    result = client.post("/api/eval?wait=true", json={"code": "print('audited')"}).json()
    eval_id = result["id"]
    assert wait_for(lambda: len(audit_events(eval_id, "evaluation")) == 1, timeout_s=30)
    (admitted,) = audit_events(eval_id, "admitted")
    (ended,) = audit_events(eval_id, "evaluation")
    assert admitted["user"] == ended["user"] == client.user
    assert admitted["client"] and len(admitted["code_sha256"]) == 64
    assert (ended["status"], ended["runtime"]) == ("succeeded", "runsc")
    assert "audited" not in json.dumps([admitted, ended])  # never the code itself
