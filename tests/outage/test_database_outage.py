"""PostgreSQL stopped under load and started again: meanwhile the API answers 503 (quickly,
with Retry-After), it serves again by itself within seconds, and nothing it accepted is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.api.conftest import poll
from tests.conftest import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# Longer than three of Serve's health-check periods (10 s): a replica that failed its checks
# for the store would be replaced meanwhile (by one that cannot start while it is down).
OUTAGE_S = 45
RECOVERY_S = 15


def _admitted(client: httpx.Client, body: dict) -> str:
    """Submit until admitted (the admission limit is small and the load fills it at times)."""
    deadline = time.monotonic() + 60
    while True:
        answer = client.post("/api/eval", json=body)
        if answer.status_code != 429 or time.monotonic() > deadline:
            assert answer.status_code == 202, answer.text
            return answer.json()["id"]
        time.sleep(float(answer.headers["retry-after"]))


@pytest.mark.timeout(600)
def test_a_database_outage_is_503_meanwhile_and_loses_nothing(outage_postgres, as_user):
    users = [as_user() for _ in range(3)]
    outcomes: list[tuple[httpx.Client, object, str | None]] = []
    stop = threading.Event()

    def load(client: httpx.Client) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                answer = client.post("/api/eval", json={"code": f"print({i})"}, timeout=30)
                eval_id = answer.json().get("id") if answer.status_code == 202 else None
                outcomes.append((client, answer.status_code, eval_id))
            except httpx.HTTPError as exc:
                outcomes.append((client, type(exc).__name__, None))
            time.sleep(0.5)

    threads = [threading.Thread(target=load, args=(c,)) for c in users]
    for thread in threads:
        thread.start()
    client = users[0]
    try:
        assert wait_for(lambda: sum(o[1] == 202 for o in outcomes) >= 5, timeout_s=60)
        # Accepted now, finishing while the database is down: its result must wait and land.
        slow = _admitted(client, {"code": "import time\ntime.sleep(3)\nprint('late')"})
        outage_postgres.stop()
        try:
            started = time.monotonic()
            refused = client.post("/api/eval", json={"code": "print('refused')"}, timeout=30)
            assert time.monotonic() - started < 10  # a clear answer, not a hung request
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
            assert "store" in refused.json()["detail"]
            assert client.get(f"/api/eval/{slow}").status_code == 503
            time.sleep(OUTAGE_S)
            assert client.post("/api/eval", json={"code": "print(0)"}).status_code == 503
        finally:
            outage_postgres.start()
        back = time.monotonic()
        assert wait_for(lambda: client.get("/api/me/export", timeout=10).status_code == 200,
                        timeout_s=60)  # fmt: skip
        assert time.monotonic() - back < RECOVERY_S  # by itself, within seconds
        time.sleep(2)  # load goes on after the outage
    finally:  # the load stops whatever failed: it must not go on against the next tests
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    statuses = Counter(o[1] for o in outcomes)
    print(f"outcomes around the outage: {dict(statuses)}")
    # Never a 500, a reset or a hung request (429: the small admission limit was full).
    assert {202, 503} <= set(statuses) <= {202, 429, 503}
    assert poll(client, slow)["stdout"] == "late\n"
    for user in users:
        accepted = {eval_id for c, status, eval_id in outcomes if c is user and status == 202}
        for eval_id in accepted:
            assert poll(user, eval_id)["status"] == "succeeded"
        recorded = {r["id"] for r in user.get("/api/me/export").json()}
        if user is client:
            accepted.add(slow)
        assert recorded == accepted  # nothing accepted lost, nothing refused left behind
