"""Judging over real HTTP to the real Serve app: POST /api/judge (?wait=true), GET and DELETE
/api/judge/{id}, validation, idempotency, ownership and the stored result."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.api.conftest import wait_until_idle
from tests.conftest import wait_for

pytestmark = pytest.mark.docker

SUM = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
TESTS = [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "2 2", "expected_stdout": "5"},
         {"stdin": "5", "expected_stdout": "5", "id": "last"}]  # fmt: skip


@pytest.fixture(autouse=True)
def idle_service(http):
    wait_until_idle(http)


def _final(client, judge_id: str) -> dict:
    body: dict = {}

    def done() -> bool:
        nonlocal body
        body = client.get(f"/api/judge/{judge_id}?wait=20").json()
        return body["status"] in ("succeeded", "cancelled", "error")

    assert wait_for(done, timeout_s=120), body
    return body


def test_judge_and_wait_for_the_verdict(as_user):
    alice = as_user()
    answer = alice.post("/api/judge?wait=true",
                        json={"code": SUM, "tests": TESTS, "stop_on_first_failure": False,
                              "scoring": "fraction", "metadata": {"task": "t1"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["status"], result["verdict"], result["passed"], result["total"]) == (
        "succeeded", "WA", 2, 3)  # fmt: skip
    assert result["score"] == pytest.approx(2 / 3)
    assert [t["verdict"] for t in result["tests"]] == ["AC", "WA", "AC"]
    assert result["tests"][1]["mismatch"] == {"line": 1, "column": 1, "expected": "5", "got": "4"}
    assert result["tests"][2]["id"] == "last"
    assert (result["runtime"], result["sandboxes"]) == ("runsc", 1)
    assert result["metadata"] == {"task": "t1"}
    assert result["compare_version"] and result["driver_version"]
    # The stored result is the same.
    stored = alice.get(f"/api/judge/{result['id']}").json()
    assert {k: stored[k] for k in ("verdict", "score", "tests", "metadata")} == {
        k: result[k] for k in ("verdict", "score", "tests", "metadata")}  # fmt: skip


def test_function_and_assert_tests_over_http(as_user):
    alice = as_user()
    code = "def add(a, b):\n    return a + b\n"
    tests = [{"args": [1, 2], "expected": 3}, {"args": [[1], [2]], "expected": [1, 2]}]
    function = alice.post("/api/judge?wait=true", json={
        "code": code, "mode": "function", "entry_point": "add", "tests": tests})  # fmt: skip
    assert function.status_code == 200, function.text
    assert [t["verdict"] for t in function.json()["tests"]] == ["AC", "AC"]
    checked = alice.post("/api/judge?wait=true", json={
        "code": code, "mode": "assert", "entry_point": "add",
        "tests": [{"code": "assert candidate(2, 2) == 5"}]})  # fmt: skip
    assert checked.status_code == 200, checked.text
    test = checked.json()["tests"][0]
    assert test["verdict"] == "WA" and "line 1 of the test" in test["message"]
    # A test of the wrong shape for its mode is refused and names itself.
    refused = alice.post("/api/judge", json={"code": code, "mode": "function",
                                             "tests": [{"args": [1]}]})  # fmt: skip
    assert refused.status_code == 422 and "entry_point" in refused.text


def test_judge_without_waiting_then_follow_it(as_user):
    bob = as_user()
    answer = bob.post("/api/judge", json={"code": SUM, "tests": TESTS[:1]})
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    result = _final(bob, answer.json()["id"])
    assert (result["verdict"], result["score"]) == ("AC", 1.0)


def test_a_compiled_submission_is_compiled_once(as_user):
    code = ('#include <stdio.h>\nint main(void) { long a = 0, x; while (scanf("%ld", &x) == 1)'
            ' a += x; printf("%ld\\n", a); return 0; }')  # fmt: skip
    tests = [{"stdin": "1 2", "expected_stdout": "3"}, {"stdin": "4 5 6", "expected_stdout": "15"}]
    body = {"code": code, "language": "c", "tests": tests}
    result = as_user().post("/api/judge?wait=true", json=body).json()
    assert (result["verdict"], result["passed"], result["sandboxes"]) == ("AC", 2, 1)
    assert result["compile"]["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "x", "tests": []}, "tests"),
        ({"code": "x", "tests": [{"stdin": "1"}]}, "expected_stdout"),
        ({"code": "x", "language": "cobol", "tests": TESTS}, "language"),
        ({"code": "x", "tests": TESTS, "compare": {"mode": "fuzzy"}}, "mode"),
        ({"code": "x", "tests": TESTS, "scoring": "subtasks"}, "body"),
        ({"code": "x", "tests": TESTS, "limits": {"cpu_s": 0}}, "cpu_s"),
        ({"code": "x", "tests": TESTS, "unknown": 1}, "unknown"),
    ],
)
def test_invalid_requests_get_422_naming_the_field(as_user, body, field):
    answer = as_user().post("/api/judge", json=body)
    assert answer.status_code == 422, answer.text
    assert field in str(answer.json()["detail"])


def test_an_expected_answer_the_comparison_cannot_use_is_refused(as_user):
    body = {"code": SUM, "tests": [{"expected_stdout": "not json"}], "compare": {"mode": "json"}}
    answer = as_user().post("/api/judge", json=body)
    assert answer.status_code == 422, answer.text
    assert "tests[0].expected_stdout" in answer.text and "JSON" in answer.text


def test_oversized_code_gets_413(as_user):
    answer = as_user().post("/api/judge", json={"code": "#" * 200_000, "tests": TESTS})
    assert answer.status_code == 413


def test_a_key_never_judges_twice(as_user):
    alice = as_user()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = alice.post("/api/judge?wait=true", json={"code": SUM, "tests": TESTS[:1]}, headers=key)
    again = alice.post("/api/judge?wait=true", json={"code": SUM, "tests": TESTS[:1]}, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = alice.post("/api/judge", json={"code": "print(1)", "tests": TESTS[:1]}, headers=key)
    assert other.status_code == 422  # the key names a different request


def test_judgings_are_their_owners_and_not_evaluations(as_user):
    alice, mallory = as_user(), as_user()
    judge_id = alice.post("/api/judge?wait=true", json={"code": SUM, "tests": TESTS[:1]}).json()[
        "id"
    ]
    assert mallory.get(f"/api/judge/{judge_id}").status_code == 404
    assert mallory.delete(f"/api/judge/{judge_id}").status_code == 404
    assert alice.get(f"/api/eval/{judge_id}").status_code == 404  # a judging, not an evaluation
    assert alice.get(f"/api/judge/{uuid.uuid4().hex}").status_code == 404


def test_cancel_a_running_judging(as_user):
    alice = as_user()
    slow = "import time\ntime.sleep(30)\n"
    body = {"code": slow, "tests": TESTS, "limits": {"cpu_s": 5, "wall_s": 40}}
    judge_id = alice.post("/api/judge", json=body).json()["id"]
    assert wait_for(lambda: alice.get(f"/api/judge/{judge_id}").json()["status"] == "running",
                    timeout_s=60)  # fmt: skip
    time.sleep(1.0)
    cancelled = alice.delete(f"/api/judge/{judge_id}")
    assert cancelled.status_code == 200, cancelled.text
    result = _final(alice, judge_id)
    assert result["status"] == "cancelled" and result["score"] is None
    assert alice.delete(f"/api/judge/{judge_id}").status_code == 409


def test_the_openapi_document_describes_judging(http):
    spec = http.get("/openapi.json").json()
    assert {"/api/judge", "/api/judge/{judge_id}"} <= set(spec["paths"])
    assert "JudgeResult" in spec["components"]["schemas"]


def test_judgings_are_exported_and_erased_with_the_users_data(as_user):
    alice = as_user()
    judged = alice.post("/api/judge?wait=true", json={"code": SUM, "tests": TESTS[:1]}).json()
    exported = alice.get("/api/me/export").json()
    assert [(r["id"], r.get("verdict")) for r in exported] == [(judged["id"], "AC")]
    assert exported[0]["tests"][0]["verdict"] == "AC"
    assert alice.delete("/api/me/data").json() == {"deleted": 1}
    assert alice.get(f"/api/judge/{judged['id']}").status_code == 404


def test_a_checker_judges_over_http_and_a_bad_one_is_refused_naming_it(as_user):
    alice = as_user()
    checker = ("import json, sys\ncase = json.load(sys.stdin)\n"
               "print('AC' if int(case['output']) % 2 == 0 else 'WA odd')\n")  # fmt: skip
    body = {"code": "print(int(input()) * 2)", "checker": {"code": checker},
            "tests": [{"stdin": "3", "expected_stdout": "any even number"}]}  # fmt: skip
    result = alice.post("/api/judge?wait=true", json=body).json()
    assert (result["verdict"], result["sandboxes"]) == ("AC", 2), result
    odd = alice.post("/api/judge?wait=true", json={**body, "code": "print(7)"}).json()
    assert (odd["verdict"], odd["tests"][0]["message"]) == ("WA", "odd")
    cobol = alice.post("/api/judge", json={**body, "checker": {"code": "x", "language": "cobol"}})
    assert cobol.status_code == 422 and "checker.language" in cobol.text
