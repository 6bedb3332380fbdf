"""The fault matrix through the real HTTP service: whatever breaks, every evaluation the
service accepted ends with a recorded result, and refusals are clear answers (never a 500).

(The Docker engine restarted mid-evaluation is in tests/sandbox/test_lifecycle.py; an executor
node killed mid-load in tests/execution/test_fault.py.)"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import httpx
import pytest

from crucible_ray.api.idempotency import derived_id
from crucible_ray.execution.client import ExecutionClient
from tests.api.conftest import HTTP_PORT, poll
from tests.conftest import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FINAL = {"succeeded", "failed", "timed_out", "cancelled", "error"}


def records_of(client: httpx.Client) -> list[dict]:
    answer = client.get("/api/me/export")
    assert answer.status_code == 200, answer.text
    return answer.json()


def all_final(client: httpx.Client) -> bool:
    return all(r["status"] in FINAL for r in records_of(client))


def test_store_disk_full_refuses_cleanly_and_loses_nothing(store_disk, as_user):
    client = as_user()
    sleeper = {"code": "import time\ntime.sleep(3)\nprint('done')"}
    ids = [client.post("/api/eval", json=sleeper).json()["id"] for _ in range(3)]
    retried_before = ExecutionClient().stats()["counters"].get("retried", 0)
    store_disk.fill()
    try:
        refused = client.post("/api/eval", json={"code": "print(1)"})
        assert refused.status_code == 503, refused.text
        assert "store" in refused.json()["detail"] and int(refused.headers["retry-after"]) >= 1
        assert client.get(f"/api/eval/{ids[0]}").status_code == 200  # reads still work
        # The three finish while the disk is full: their results wait in the dispatcher.
        assert wait_for(lambda: ExecutionClient().stats()["unrecorded"] >= 1, timeout_s=60)
    finally:
        store_disk.free()
    for eval_id in ids:
        result = poll(client, eval_id, timeout_s=90)
        assert (result["status"], result["stdout"]) == ("succeeded", "done\n"), result
    assert wait_for(lambda: ExecutionClient().stats()["unrecorded"] == 0, timeout_s=60)
    # nothing was run twice for the store's sake
    assert ExecutionClient().stats()["counters"].get("retried", 0) == retried_before
    assert client.post("/api/eval?wait=true", json={"code": "print(2)"}).json()["stdout"] == "2\n"
    assert all_final(client) and len(records_of(client)) == 4  # the refused one left nothing


def _ingress_replicas() -> list[tuple[str, str]]:
    import ray

    return [(a["name"], a["namespace"]) for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("SERVE_REPLICA::") and "Ingress" in a["name"]]  # fmt: skip


@pytest.mark.timeout(600)
def test_killing_an_ingress_replica_mid_load_loses_nothing(http, as_user):
    import ray

    assert wait_for(lambda: len(_ingress_replicas()) == 2, timeout_s=60)
    callers = [as_user() for _ in range(6)]
    outcomes: list[tuple[httpx.Client, object, str | None]] = []
    stop = threading.Event()

    def call(client: httpx.Client) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            code = f"import time\ntime.sleep(0.5)\nprint({i})"
            try:
                answer = client.post("/api/eval?wait=true", json={"code": code})
                body = answer.json() if answer.headers.get("content-type", "").startswith(
                    "application/json") else {}  # fmt: skip
                outcomes.append((client, answer.status_code, body.get("id")))
            except httpx.HTTPError as exc:  # the connection died with the replica
                outcomes.append((client, type(exc).__name__, None))

    threads = [threading.Thread(target=call, args=(c,)) for c in callers]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: sum(o[1] == 200 for o in outcomes) >= 10, timeout_s=120)
        name, namespace = _ingress_replicas()[0]
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
        time.sleep(10)  # load goes on while Serve replaces the replica
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
    statuses = Counter(o[1] for o in outcomes)
    print(f"outcomes around the kill: {dict(statuses)}")
    assert statuses[200] >= 10
    cut_off = {500, 502, 503, "RemoteProtocolError", "ReadError"}  # the requests in the replica
    assert set(statuses) - {200, 202, 429} - cut_off == set()
    # Serve replaces the replica and the service answers as before.
    assert wait_for(lambda: len(_ingress_replicas()) == 2, timeout_s=120)
    assert wait_for(lambda: http.get("/healthz").status_code == 200, timeout_s=60)
    # Every evaluation a caller got an id for has its final result...
    for client, status, eval_id in outcomes:
        if status in (200, 202) and eval_id:
            assert poll(client, eval_id, timeout_s=120)["status"] == "succeeded"
    # ...and so has every one the service recorded, answered or not (those cut off by the kill
    # ran anyway or, never admitted, end as errors once reconciled).
    for client in callers:
        assert wait_for(lambda c=client: all_final(c), timeout_s=120), records_of(client)
        assert {r["status"] for r in records_of(client)} <= {"succeeded", "error"}


@pytest.mark.timeout(600)
def test_python_client_callers_never_notice_an_ingress_replica_dying(service, token_for):
    import ray

    from crucible_ray import Client

    users = [f"client-{n}-{time.monotonic_ns()}" for n in range(6)]
    done: dict[str, list[tuple[int, object]]] = {user: [] for user in users}
    errors: list[str] = []
    stop = threading.Event()

    def call(user: str) -> None:
        with Client(service, token=token_for(user)) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    done[user].append(
                        (i, client.evaluate(f"import time\ntime.sleep(0.5)\nprint({i})"))
                    )
                except Exception as exc:  # what a caller would see
                    errors.append(f"{user} call {i}: {exc!r}")

    assert wait_for(lambda: len(_ingress_replicas()) == 2, timeout_s=120)
    threads = [threading.Thread(target=call, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: sum(map(len, done.values())) >= 10, timeout_s=120)
        name, namespace = _ingress_replicas()[0]
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
        time.sleep(10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=300)
    assert errors == []  # cut-off submissions were resent under their Idempotency-Key
    for user in users:
        for i, result in done[user]:
            assert (result.status, result.stdout) == ("succeeded", f"{i}\n"), result
        auth = {"Authorization": f"Bearer {token_for(user)}"}
        with httpx.Client(base_url=service, timeout=60, headers=auth) as http:
            assert len(records_of(http)) == len(done[user])  # and none of them ran twice


def _raw_request(
    body: bytes, token: str, *, send_body: bool = True, key: str | None = None
) -> socket.socket:
    head = (
        f"POST /api/eval?wait=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        + (f"Idempotency-Key: {key}\r\n" if key else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    sock.sendall(head + (body if send_body else body[: len(body) // 2]))
    return sock


def _resend(client: httpx.Client, body: bytes, key: str) -> dict:
    """Resend under ``key`` until admitted, as a client would (the admission limit is small)."""
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    deadline = time.monotonic() + 60
    while True:
        answer = client.post("/api/eval", content=body, headers=headers)
        if answer.status_code != 429 or time.monotonic() > deadline:
            assert answer.status_code == 202, answer.text
            return answer.json()
        time.sleep(float(answer.headers["retry-after"]))


def test_clients_that_disconnect_lose_nothing(as_user, token_for):
    waiting, hasty, halfway = as_user(), as_user(), as_user()
    body = b'{"code": "import time\\ntime.sleep(2)\\nprint(42)"}'
    # Gone while waiting for ?wait=true: their evaluations go on and are recorded.
    sockets = [_raw_request(body, token_for(waiting.user)) for _ in range(5)]
    assert wait_for(lambda: len(records_of(waiting)) == 5, timeout_s=30)
    for sock in sockets:
        sock.close()
    # Gone right after sending: each one was accepted whole, or not at all. Each carries a key,
    # so resending it (as a client would) finds the one it made, or makes it once now.
    keys = [f"hasty-{i}" for i in range(5)]
    for key in keys:
        _raw_request(body, token_for(hasty.user), key=key).close()
    # Gone in the middle of the body: nothing can have been accepted.
    for _ in range(5):
        _raw_request(body, token_for(halfway.user), send_body=False).close()
    time.sleep(1)  # the server has seen them all go
    for key in keys:
        assert _resend(hasty, body, key)["id"] == derived_id(hasty.user, key)
    for client in (waiting, hasty):
        assert wait_for(lambda c=client: all_final(c), timeout_s=120), records_of(client)
        assert [r["stdout"] for r in records_of(client)] == ["42\n"] * 5  # none lost or doubled
    assert {r["id"] for r in records_of(hasty)} == {derived_id(hasty.user, k) for k in keys}
    assert records_of(halfway) == []
    assert waiting.post("/api/eval?wait=true", json={"code": "print(1)"}).status_code == 200


def test_slow_clients_do_not_hold_up_others(as_user, token_for):
    client = as_user()
    token = token_for(client.user)
    body = b'{"code": "print(7)"}'
    # Fifty connections that send half a request and stall (slowloris), and five slow readers
    # that never read the answers they asked for.
    stalled = [_raw_request(body, token, send_body=False) for _ in range(50)]
    readers = [_raw_request(body, token) for _ in range(5)]
    try:
        for i in range(5):
            answer = client.post("/api/eval?wait=true", json={"code": f"print({i})"})
            refusal = answer.headers.get("x-crucible-refusal")
            assert answer.status_code == 200, (answer.text, refusal)
            assert answer.json()["stdout"] == f"{i}\n"
    finally:
        for sock in stalled + readers:
            sock.close()
    assert wait_for(lambda: all_final(client), timeout_s=120)
    outputs = Counter(r["stdout"] for r in records_of(client))
    assert outputs["7\n"] == 5 and sum(outputs.values()) == 10  # the stalled ones: nothing
