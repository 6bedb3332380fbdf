"""The HTTP contract, spoken over real HTTP to the real Serve app on a real cluster."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest

from crucible_ray.execution.admitter import EXECUTORS_CHECK_S
from tests.api.conftest import TEST_SECRET, poll, wait_until_idle
from tests.conftest import wait_for
from tests.support.audit import audit_events

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def idle_service(http):
    wait_until_idle(http)


def test_submit_poll_and_result(as_user):
    alice = as_user()
    answer = alice.post(
        "/api/eval", json={"code": "import os\nprint(6 * 7)", "metadata": {"task": "t1"}}
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and len(body["id"]) == 32
    result = poll(alice, body["id"])
    assert (result["status"], result["stdout"], result["runtime"]) == ("succeeded", "42\n", "runsc")
    assert result["metadata"] == {"task": "t1"}
    assert result["warnings"] == ["imports os (operating system)"]


def test_wait_true_returns_the_finished_result(as_user):
    answer = as_user().post(
        "/api/eval?wait=true", json={"code": "console.log('js')", "language": "javascript"}
    )
    assert answer.status_code == 200 and answer.json()["stdout"] == "js\n"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer "
        + jwt.encode(
            {"sub": "a", "iat": 1, "exp": 2**40, "iss": "crucible-ray"},
            "some-other-secret-of-enough-length-0123",
            "HS256",
        ),
        "Bearer "
        + jwt.encode(
            {"sub": "a", "iat": 1, "exp": int(time.time()) - 10, "iss": "crucible-ray"},
            TEST_SECRET,
            "HS256",
        ),
    ],
)
def test_bad_credentials_get_401_with_www_authenticate(http, header):
    headers = {"Authorization": header} if header else {}
    answer = http.post("/api/eval", json={"code": "print(1)"}, headers=headers)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_languages_are_listed_to_users_with_a_compile_error_of_their_own(http, as_user):
    assert http.get("/api/languages").status_code == 401
    alice = as_user()
    listed = {item["name"]: item for item in alice.get("/api/languages").json()}
    assert listed["go"]["compile"]["memory_mb"] > listed["go"]["run"]["memory_mb"] == 100
    answer = alice.post("/api/eval?wait=true", json={"code": "fn main() { x }", "language": "rust"})
    result = answer.json()
    assert result["status"] == "compile_error" and result["compile"]["status"] == "error", result
    assert "cannot find value `x`" in result["compile"]["output"] and result["stderr"] == ""
    assert alice.get(f"/api/eval/{result['id']}").json()["compile"] == result["compile"]  # stored


def test_a_request_names_the_science_image_and_its_result_says_so(as_user):
    alice = as_user()
    listed = {item["name"]: item for item in alice.get("/api/languages").json()}
    science = listed["python-science"]
    assert (science["language"], science["default"], listed["python"]["default"]) == (
        "python", False, True)  # fmt: skip
    assert science["run"]["memory_mb"] == 512 and "python3-pandas" in science["packages"]
    code = "import numpy, pandas\nprint(int(pandas.Series(numpy.arange(4)).sum()))"
    answer = alice.post("/api/eval?wait=true", json={"code": code, "image": "python-science",
                                                      "timeout_s": 40})  # fmt: skip
    result = answer.json()
    assert (result["status"], result["stdout"]) == ("succeeded", "6\n"), result
    assert (result["language"], result["image"]) == ("python", "python-science")
    assert alice.get(f"/api/eval/{result['id']}").json()["image"] == "python-science"  # stored
    plain = alice.post("/api/eval?wait=true", json={"code": code}).json()
    assert (plain["status"], plain["image"]) == ("failed", "python")
    assert "No module named 'numpy'" in plain["stderr"]


def test_oversized_code_and_body_get_413(as_user):
    client = as_user()
    assert client.post("/api/eval", json={"code": "#" * 100_001}).status_code == 413
    huge = {"code": "print(1)", "stdin": "x" * (2 << 20)}
    assert client.post("/api/eval", json=huge).status_code == 413


@pytest.mark.parametrize(
    "body,field",
    [
        ({"code": "print(1)", "language": "cobol"}, "language"),
        ({"code": "print(1)", "timeout_s": 41}, "timeout_s"),
        ({"code": "print(1)", "timeout_s": 0}, "timeout_s"),
        ({"language": "python"}, "code"),
        ({"code": ""}, "code"),
        ({"code": "print(1)", "metadata": {"x": "y" * 5000}}, "metadata"),
        ({"code": "print(1)", "unknown": 1}, "unknown"),
        ({"code": "print(1)", "language": "go", "image": "python-science"}, "image"),
        ({"code": "print(1)", "image": "python-nope"}, "image"),
    ],
)
def test_validation_errors_get_422_naming_the_field(as_user, body, field):
    answer = as_user().post("/api/eval", json=body)
    assert answer.status_code == 422, answer.text
    assert field in {str(part) for error in answer.json()["detail"] for part in error["loc"]}


def test_the_limits_are_the_settings_not_constants(as_user):
    """The service runs with a 2,048-byte metadata limit and a 40 s longest timeout (defaults:
    4,096 and 30): each answer below would be the opposite under the defaults."""
    client = as_user()
    metadata = {"x": "y" * 3000}  # 3 KB: over this service's limit, under the default
    refused = client.post("/api/eval", json={"code": "print(1)", "metadata": metadata})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "metadata"]
    assert "2048 bytes" in refused.json()["detail"][0]["msg"]
    accepted = client.post("/api/eval?wait=true", json={"code": "print(3)", "timeout_s": 35})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["stdout"] == "3\n"
    over = client.post("/api/eval", json={"code": "print(1)", "timeout_s": 41})
    assert over.status_code == 422, over.text
    assert over.json()["detail"][0]["loc"] == ["body", "timeout_s"]


def test_other_users_ids_and_unknown_ids_are_404(as_user):
    alice, mallory = as_user(), as_user()
    eval_id = alice.post("/api/eval", json={"code": "print('private')"}).json()["id"]
    assert mallory.get(f"/api/eval/{eval_id}").status_code == 404
    assert mallory.delete(f"/api/eval/{eval_id}").status_code == 404
    assert alice.get("/api/eval/0123456789abcdef").status_code == 404
    assert poll(alice, eval_id)["stdout"] == "private\n"


def test_cancel_running_then_409_once_finished(as_user):
    client = as_user()
    eval_id = client.post(
        "/api/eval", json={"code": "import time\ntime.sleep(60)", "timeout_s": 30}
    ).json()["id"]
    assert wait_for(lambda: client.get(f"/api/eval/{eval_id}").json()["status"] == "running")
    answer = client.delete(f"/api/eval/{eval_id}")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert poll(client, eval_id)["status"] == "cancelled"
    assert client.delete(f"/api/eval/{eval_id}").status_code == 409


def test_rate_limit_holds_across_ingress_replicas(as_user):
    client = as_user()

    def rate_limited(answer) -> bool:
        return answer.status_code == 429 and "rate limit" in answer.json()["detail"]

    answers = [client.post("/api/eval", json={"code": "print(1)"})]
    while not rate_limited(answers[-1]) and len(answers) < 40:
        answers.append(client.post("/api/eval", json={"code": "print(1)"}))
    # Exactly ten were admitted, whichever replica served them. Refusals for overload (the
    # admission limit is small) are not charged to the user's limit.
    assert sum(a.status_code == 202 for a in answers) == 10
    assert all(a.status_code in (202, 429) for a in answers)
    assert rate_limited(answers[-1]) and int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].headers["x-crucible-refusal"] == "rate_limited"
    assert rate_limited(client.post("/api/eval", json={"code": "print(1)"}))


def test_overload_answers_429_quickly(http, as_user):
    wait_until_idle(http)  # the previous tests' evaluations would take part of the limit
    sleepers = []
    for _ in range(4):  # 4 users x 2 = the admission limit of 8
        client = as_user()
        for _ in range(2):
            answer = client.post(
                "/api/eval", json={"code": "import time\ntime.sleep(20)", "timeout_s": 25}
            )
            assert answer.status_code == 202, answer.text
            sleepers.append((client, answer.json()["id"]))
    started = time.monotonic()
    answer = as_user().post("/api/eval", json={"code": "print(1)"})
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 1
    assert answer.headers["x-crucible-refusal"] == "overloaded"
    assert time.monotonic() - started < 5  # refused at once, not queued
    for client, eval_id in sleepers:
        client.delete(f"/api/eval/{eval_id}")


def test_batch_status_and_json_lines_results(as_user):
    client = as_user()
    items = [{"code": f"print({i})"} for i in range(3)] + [{"code": "exit(3)"}]
    answer = client.post("/api/batch", json={"items": items})
    assert answer.status_code == 202, answer.text
    batch = answer.json()
    assert len(batch["ids"]) == 4
    assert wait_for(lambda: client.get(f"/api/batch/{batch['batch_id']}").json()["done"])
    status = client.get(f"/api/batch/{batch['batch_id']}").json()
    assert status["total"] == 4 and status["counts"] == {"succeeded": 3, "failed": 1}
    lines = client.get(f"/api/batch/{batch['batch_id']}/results").text.splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["id"] for r in results] == batch["ids"]  # in submission order
    assert [r["stdout"] for r in results] == ["0\n", "1\n", "2\n", ""]
    assert as_user().get(f"/api/batch/{batch['batch_id']}").status_code == 404
    too_many = client.post("/api/batch", json={"items": [{"code": "1"}] * 1001})  # 15 kB body
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["detail"][0]["loc"] == ["body", "items"]


def test_export_and_erase_my_data(as_user):
    client = as_user()
    ids = [client.post("/api/eval", json={"code": f"print({i})"}).json()["id"] for i in range(2)]
    for eval_id in ids:
        poll(client, eval_id)
    exported = client.get("/api/me/export").json()
    assert sorted(r["id"] for r in exported) == sorted(ids)
    assert client.delete("/api/me/data").json() == {"deleted": 2}
    assert client.get(f"/api/eval/{ids[0]}").status_code == 404
    assert client.get("/api/me/export").json() == []


def test_health_dashboard_and_docs(http, as_user, token_for):
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json()["executors"] >= 1
    page = http.get("/dashboard")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]  # no CDN, no inline
    assert http.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert http.get("/dashboard/dashboard.py").status_code == 404  # only the page's own assets
    assert http.get("/api/dashboard").status_code == 401
    assert as_user().get("/api/dashboard").status_code == 403  # every user's activity: operators
    operator = {"Authorization": f"Bearer {token_for('ops', roles=['operator'])}"}
    data = http.get("/api/dashboard", headers=operator).json()
    assert data["dispatcher"]["admission_limit"] == 8 and len(data["per_minute"]) == 16
    assert {"outcomes", "duration_ms", "latency_ms", "recent"} <= set(data)
    spec = http.get("/openapi.json").json()
    assert {"/api/eval", "/api/eval/{eval_id}", "/api/batch", "/healthz"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200


def test_restarting_the_ingress_loses_nothing(as_user, settings):
    from crucible_ray.api.deployment import deploy

    client = as_user()
    eval_id = client.post("/api/eval", json={"code": "import time\ntime.sleep(3)\nprint('ok')"})
    eval_id = eval_id.json()["id"]
    deploy(settings, num_replicas=2)  # redeploy: new replicas replace the old ones
    result = poll(client, eval_id)
    assert result["status"] == "succeeded" and result["stdout"] == "ok\n"


def test_audit_log_has_one_event_per_evaluation(as_user):
    client = as_user()
    eval_id = client.post("/api/eval?wait=true", json={"code": "print('audited')"}).json()["id"]
    assert wait_for(lambda: len(audit_events(eval_id, "evaluation")) == 1, timeout_s=30)
    (event,) = audit_events(eval_id, "evaluation")
    assert event["user"] == client.user and event["status"] == "succeeded"
    assert event["runtime"] == "runsc" and len(event["code_sha256"]) == 64
    assert event["client"] and "audited" not in json.dumps(event)  # never the code itself


def test_a_security_event_reaches_the_result_and_the_audit_log(as_user):
    """A program that tries the network: its result over HTTP carries the runtime monitor's
    events, and the audit log has a security_event naming the evaluation and the user."""

    client = as_user()
    code = ("import socket\ns = socket.socket()\ns.settimeout(1)\n"
            "try:\n    s.connect(('198.51.100.9', 25))\nexcept OSError:\n    pass")  # fmt: skip
    result = client.post("/api/eval?wait=true", json={"code": code}).json()
    assert result["status"] == "succeeded", result
    assert result["security"]["counts"]["network_connect"] == 1, result["security"]

    def events() -> list[dict]:
        return audit_events(result["id"], "security_event")

    assert wait_for(lambda: any(e["rule"] == "network_connect" for e in events()), timeout_s=30)
    event = next(e for e in events() if e["rule"] == "network_connect")
    assert event["user"] == client.user and event["alert"] == "unexpected_network_activity"
    assert event["detail"] == "connect(198.51.100.9:25)" and event["level"] == "warning"


def test_no_executor_means_503_until_executors_return(http, as_user, cluster):
    from crucible_ray.cluster import local

    executors = [n for n in cluster.nodes if n["role"] == "executor" and not n.get("stopped")]
    admitted: list[tuple[httpx.Client, str]] = []  # queued before the outage was declared

    def refused_as_unavailable() -> bool:
        client = as_user()  # a fresh user each time, so the rate limit never answers first
        answer = client.post("/api/eval", json={"code": "print(1)"})
        if answer.status_code == 202:
            admitted.append((client, answer.json()["id"]))
        return answer.status_code == 503

    for node in executors:
        local.kill_executor(cluster, node)
    try:
        assert wait_for(lambda: http.get("/healthz").status_code == 503, timeout_s=60)
        assert wait_for(refused_as_unavailable, timeout_s=90)
        time.sleep(EXECUTORS_CHECK_S + 1)  # on the queue plane, each replica asks the store
        for _ in range(4):  # whichever replica answers
            answer = as_user().post("/api/eval", json={"code": "print(1)"})
            assert answer.status_code == 503, answer.text
            assert answer.headers["X-Crucible-Refusal"] == "no_executor"  # a stable reason code
            assert answer.json()["detail"].startswith("no executor can take work now: ")
    finally:
        for _ in executors:
            local.add_executor(cluster)
    assert wait_for(lambda: http.get("/healthz").status_code == 200, timeout_s=120)
    # What was admitted while executors were gone runs once they are back: nothing lost.
    for client, eval_id in admitted:
        assert poll(client, eval_id, timeout_s=180)["status"] == "succeeded"
    assert as_user().post("/api/eval?wait=true", json={"code": "print(2)"}).status_code == 200
