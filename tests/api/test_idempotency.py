"""Idempotency-Key: a resent submission gets the same evaluation back and never runs twice."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import poll, wait_until_idle

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def idle_service(http):
    wait_until_idle(http)


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"test:{uuid.uuid4().hex}"}


def test_a_resent_submission_is_the_same_evaluation(as_user):
    client, key = as_user(), _key()
    body = {"code": "import time\ntime.sleep(1)\nprint('once')"}
    first = client.post("/api/eval", json=body, headers=key)
    again = client.post("/api/eval", json=body, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["id"] == again.json()["id"]
    assert poll(client, first.json()["id"])["stdout"] == "once\n"
    finished = client.post("/api/eval?wait=true", json=body, headers=key)
    assert finished.status_code == 200 and finished.json()["id"] == first.json()["id"]
    assert len(client.get("/api/me/export").json()) == 1  # it ran once
    fresh = client.post("/api/eval", json=body, headers=_key())  # another key: another run
    assert fresh.json()["id"] != first.json()["id"]


def test_twins_sent_at_once_make_one_evaluation(as_user):
    client, key = as_user(), _key()
    body = {"code": "print('twin')"}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post("/api/eval?wait=true", json=body,
                                                      headers=key), range(6)))  # fmt: skip
    assert {a.status_code for a in answers} <= {200, 202}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    records = client.get("/api/me/export").json()
    assert len(records) == 1 and poll(client, records[0]["id"])["stdout"] == "twin\n"


def test_a_key_reused_for_another_program_or_malformed_is_422(as_user):
    client, key = as_user(), _key()
    assert client.post("/api/eval", json={"code": "print(1)"}, headers=key).status_code == 202
    reused = client.post("/api/eval", json={"code": "print(2)"}, headers=key)
    assert reused.status_code == 422 and "Idempotency-Key" in reused.text
    for bad in ("has spaces", "x" * 129, ""):
        answer = client.post("/api/eval", json={"code": "print(1)"},
                             headers={"Idempotency-Key": bad})  # fmt: skip
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_resent_batch_is_the_same_batch(as_user):
    client, key = as_user(), _key()
    items = {"items": [{"code": f"print({i})"} for i in range(3)]}
    first = client.post("/api/batch", json=items, headers=key)
    again = client.post("/api/batch", json=items, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert first.json() == again.json()
    assert len(client.get("/api/me/export").json()) == 3


def test_a_key_reused_for_another_batch_is_422_and_records_nothing(as_user):
    client, key = as_user(), _key()
    items = [{"code": f"print({i})"} for i in range(2)]
    first = client.post("/api/batch", json={"items": items}, headers=key)
    assert first.status_code == 202, first.text
    # Other code, the same code with other input, one item fewer: each is another request.
    others = [
        [{"code": "print('other')"}, items[1]],
        [items[0], {**items[1], "stdin": "different"}],
        items[:1],
    ]
    for other in others:
        reused = client.post("/api/batch", json={"items": other}, headers=key)
        assert reused.status_code == 422, (other, reused.text)
        assert reused.json()["detail"] == "Idempotency-Key already used for a different batch"
    # The same content spelled with its defaults is the same request.
    spelled = [{**item, "language": "python", "stdin": ""} for item in items]
    again = client.post("/api/batch", json={"items": spelled}, headers=key)
    assert again.status_code == 202 and again.json() == first.json()
    assert len(client.get("/api/me/export").json()) == 2
