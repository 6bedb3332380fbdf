"""Test sets by reference and judge batches over real HTTP to the real Serve app: PUT, GET,
DELETE /api/testsets, judge requests that name a test set, POST /api/judge/batch with its
dedupe, ownership, limits and idempotency, and the batch's results."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from tests.api.conftest import LIMITS, wait_until_idle
from tests.api.test_judge import SUM, TESTS
from tests.conftest import wait_for

pytestmark = pytest.mark.docker
WRONG = "print(4)\n"


@pytest.fixture(autouse=True)
def idle_service(http):
    wait_until_idle(http)


def _store(client, tests=TESTS) -> dict:
    answer = client.put("/api/testsets", json={"tests": tests})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def _batch_results(client, batch_id: str) -> list[dict]:
    assert wait_for(lambda: client.get(f"/api/batch/{batch_id}").json()["done"], timeout_s=180)
    answer = client.get(f"/api/batch/{batch_id}/results")
    return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def test_a_test_set_is_stored_once_and_named_by_its_contents_hash(as_user):
    alice = as_user()
    created = alice.put("/api/testsets", json={"tests": TESTS})
    assert created.status_code == 201, created.text
    info = created.json()
    # The same tests spelled with their defaults: the same content, the same id.
    spelled = [{**t, "weight": 1.0, "args": []} for t in TESTS]
    again = alice.put("/api/testsets", json={"tests": spelled})
    assert again.status_code == 200 and again.json()["id"] == info["id"]
    # Canonical: fields at their default left out (so a field added later changes no id).
    canonical = json.dumps([{k: v for k, v in t.items() if v is not None} for t in TESTS],
                           sort_keys=True, separators=(",", ":")).encode()  # fmt: skip
    assert info["id"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert (info["tests"], info["bytes"]) == (3, len(canonical))
    stored = alice.get(f"/api/testsets/{info['id']}").json()
    assert stored == again.json() and stored["used_at"] > info["used_at"]  # storing is a use
    assert [s["id"] for s in alice.get("/api/testsets").json()] == [info["id"]]


def test_a_judgement_by_reference_is_the_judgement_of_its_tests(as_user):
    alice = as_user()
    set_id = _store(alice)["id"]
    body = {"code": SUM, "stop_on_first_failure": False, "scoring": "fraction"}
    named = alice.post("/api/judge?wait=true", json={**body, "testset": set_id}).json()
    inline = alice.post("/api/judge?wait=true", json={**body, "tests": TESTS}).json()
    assert [t["verdict"] for t in named["tests"]] == ["AC", "WA", "AC"]
    assert {k: named[k] for k in ("verdict", "score", "passed", "total")} == {
        k: inline[k] for k in ("verdict", "score", "passed", "total")}  # fmt: skip
    assert named["tests"][2]["id"] == "last"


def test_a_test_set_is_its_owners_alone_and_gone_once_deleted(as_user):
    alice, mallory = as_user(), as_user()
    set_id = _store(alice)["id"]
    assert mallory.get(f"/api/testsets/{set_id}").status_code == 404
    assert mallory.delete(f"/api/testsets/{set_id}").status_code == 404
    stolen = mallory.post("/api/judge", json={"code": SUM, "testset": set_id})
    assert stolen.status_code == 422 and "testset" in stolen.text
    assert alice.delete(f"/api/testsets/{set_id}").status_code == 204
    gone = alice.post("/api/judge", json={"code": SUM, "testset": set_id})
    assert gone.status_code == 422 and "no such test set" in gone.text
    assert alice.get("/api/testsets").json() == []


def test_a_test_set_that_does_not_fit_the_request_is_refused_naming_it(as_user):
    alice = as_user()
    set_id = _store(alice)["id"]  # stdio tests
    body = {"code": SUM, "testset": set_id, "mode": "function", "entry_point": "f"}
    answer = alice.post("/api/judge", json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"][:2] == ["body", "testset"] and "not used by mode function" in detail["msg"]


def test_test_data_past_the_policy_gets_413_and_nothing_is_stored(as_user):
    alice = as_user()
    big = [{"stdin": "", "expected_stdout": "x" * (LIMITS["test_data_limit_bytes"] // 2)}] * 3
    assert alice.put("/api/testsets", json={"tests": big}).status_code == 413
    assert alice.post("/api/judge", json={"code": SUM, "tests": big}).status_code == 413
    batch = {"tests": big, "submissions": [{"code": SUM}]}
    assert alice.post("/api/judge/batch", json=batch).status_code == 413
    assert alice.get("/api/testsets").json() == []


def test_a_batch_judges_each_distinct_submission_once(as_user):
    alice = as_user()
    set_id = _store(alice)["id"]
    submissions = [{"code": SUM, "metadata": {"n": 0}}, {"code": WRONG}, {"code": SUM},
                   {"code": SUM, "language": "python", "image": "python"}]  # fmt: skip
    answer = alice.post("/api/judge/batch", json={"testset": set_id, "scoring": "fraction",
                                                  "stop_on_first_failure": False,
                                                  "submissions": submissions})  # fmt: skip
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    ids = accepted["ids"]
    assert accepted["unique"] == 2 and ids[0] == ids[2] == ids[3] != ids[1]
    results = _batch_results(alice, accepted["batch_id"])
    assert [r["id"] for r in results] == [ids[0], ids[1]]
    by_id = {r["id"]: r for r in results}
    assert by_id[ids[0]]["score"] == pytest.approx(2 / 3) and by_id[ids[1]]["score"] == 0.0
    assert by_id[ids[0]]["metadata"] == {"n": 0}  # the first of the identical ones
    assert alice.get(f"/api/judge/{ids[1]}").json()["verdict"] == "WA"
    status = alice.get(f"/api/batch/{accepted['batch_id']}").json()
    assert (status["total"], status["done"]) == (2, True)


def test_a_batch_key_never_judges_twice_and_names_one_request(as_user):
    alice = as_user()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"tests": TESTS[:1], "submissions": [{"code": SUM}, {"code": WRONG}, {"code": SUM}]}
    first = alice.post("/api/judge/batch", json=body, headers=key).json()
    again = alice.post("/api/judge/batch", json=body, headers=key).json()
    assert first == again and first["ids"][0] == first["ids"][2]
    other = alice.post("/api/judge/batch", json={**body, "submissions": [{"code": SUM}]},
                       headers=key)  # fmt: skip
    assert other.status_code == 422
    assert len(_batch_results(alice, first["batch_id"])) == 2


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"tests": TESTS, "submissions": []}, "submissions"),
        ({"submissions": [{"code": SUM}]}, "tests or testset"),
        ({"tests": TESTS, "submissions": [{"code": SUM, "language": "cobol"}]}, "language"),
        ({"tests": TESTS, "submissions": [{"code": SUM, "image": "c"}]}, "image"),
        ({"tests": TESTS, "submissions": [{"code": SUM, "tests": TESTS}]}, "tests"),
        ({"tests": TESTS, "mode": "assert", "submissions": [{"code": SUM}]}, "mode assert"),
    ],
)
def test_invalid_batches_get_422_naming_the_field(as_user, body, where):
    answer = as_user().post("/api/judge/batch", json=body)
    assert answer.status_code == 422, answer.text
    assert where in answer.text


def test_a_batch_larger_than_the_room_left_is_refused_before_anything_runs(as_user, http):
    alice = as_user()
    room = http.get("/healthz").json()["admission_limit"]
    submissions = [{"code": f"{SUM}# {n}\n"} for n in range(room + 1)]
    answer = alice.post("/api/judge/batch", json={"tests": TESTS[:1], "submissions": submissions})
    assert answer.status_code == 429, answer.text
    assert alice.get("/api/me/export").json() == []  # nothing recorded


def test_the_openapi_document_describes_test_sets_and_judge_batches(http):
    spec = http.get("/openapi.json").json()
    assert {"/api/testsets", "/api/testsets/{testset_id}", "/api/judge/batch"} <= set(spec["paths"])
    assert {"TestSetInfo", "JudgeBatchSubmission"} <= set(spec["components"]["schemas"])


def test_test_sets_are_erased_with_the_users_data(as_user):
    alice = as_user()
    set_id = _store(alice)["id"]
    assert alice.delete("/api/me/data").json() == {"deleted": 1}
    assert alice.get(f"/api/testsets/{set_id}").status_code == 404
