"""The durable queue against a real SQLite file and a real PostgreSQL server: admission,
fair claims, results fenced by lease, lost executors, cancel, timeouts, and concurrent
claimers that never take the same evaluation twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from crucible_ray.errors import LeaseLost
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult, EvalStatus, utcnow
from crucible_ray.store import EvalStore, NewEvaluation
from crucible_ray.store.leases import CancelOutcome
from crucible_ray.store.queue import DurableQueue, QueueConfig
from crucible_ray.store.sealing import Sealer

CODE = "print('secret code of alice')"
REQUEST = CODE.encode()
LATER = timedelta(seconds=60)


@pytest.fixture
def queue(store) -> DurableQueue:
    return DurableQueue(store, Sealer.generate(), QueueConfig(max_attempts=2))


def admit(queue: DurableQueue, user: str, *ids: str, limit: int | None = None,
          request: bytes = REQUEST, kind: str | None = None) -> bool:  # fmt: skip
    entries = [(NewEvaluation(id=i, user=user, code=CODE, language="python", kind=kind), request)
               for i in ids]  # fmt: skip
    return queue.admit(entries, user_limit=limit)


def done(eval_id: str, stdout: str = "ok\n") -> EvalResult:
    return EvalResult(id=eval_id, status=EvalStatus.SUCCEEDED, language="python", exit_code=0,
                      stdout=stdout, runtime="runsc", finished_at=utcnow())  # fmt: skip


def status(store: EvalStore, user: str, eval_id: str) -> str:
    return store.get(user, eval_id).status.value


def test_admitted_work_is_recorded_sealed_claimed_and_finished_once(store, queue):
    assert admit(queue, "alice", "a1", "a2")
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM queue_items")).mappings().all()
    assert len(rows) == 2 and all(CODE.encode() not in bytes(r["sealed"]) for r in rows)
    assert status(store, "alice", "a1") == "queued"
    token = queue.register("ex1")
    claimed = queue.claim("ex1", token, slots=1)
    assert [(c.id, c.request, c.attempt) for c in claimed] == [("a1", REQUEST, 1)]  # FIFO
    assert status(store, "alice", "a1") == "running"
    assert queue.depth().queued == 1 and queue.depth().running == 1
    assert list(queue.finish("ex1", token, [done("a1")])) == ["a1"]
    assert queue.finish("ex1", token, [done("a1", "again")]) == {}  # once
    result = store.get("alice", "a1")
    assert (result.status, result.stdout) == (EvalStatus.SUCCEEDED, "ok\n")
    with store.engine.connect() as conn:  # the sealed request went with the result
        assert conn.execute(text("SELECT id FROM queue_items")).scalars().all() == ["a2"]
    assert queue.reconcile() == {}


def test_user_limit_is_all_or_nothing(store, queue):
    assert admit(queue, "alice", "a1", "a2", limit=3)
    assert not admit(queue, "alice", "a3", "a4", limit=3)  # 2 + 2 > 3
    assert store.get("alice", "a3") is None and queue.depth().queued == 2
    assert not admit(queue, "bob", "b1", "b2", "b3", "b4", limit=3)
    assert admit(queue, "bob", "b1", limit=3) and admit(queue, "alice", "a3", limit=3)
    assert queue.reconcile() == {}


def test_claims_share_slots_fairly_and_respect_bytes(queue):
    assert admit(queue, "flood", *[f"f{i}" for i in range(20)])
    assert admit(queue, "late", "l1", "l2")
    token = queue.register("ex1")
    first = [c.id for c in queue.claim("ex1", token, slots=4)]
    assert sorted(first) == ["f0", "f1", "l1", "l2"]  # not the flood's first four
    big = QueueConfig(max_claim_bytes=len(REQUEST) * 3)
    capped = DurableQueue(queue.store, queue._sealer, big)
    assert len(capped.claim("ex1", token, slots=10)) == 3
    assert queue.reconcile() == {}


def backoff_passes(store: EvalStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE queue_items SET not_before = :t"), {"t": utcnow() - LATER})


def test_a_lapsed_lease_queues_work_again_then_gives_up(store, queue):
    assert admit(queue, "alice", "a1")
    token = queue.register("ex1")
    assert [c.id for c in queue.claim("ex1", token, slots=5)] == ["a1"]
    assert queue.expire(utcnow() - LATER) == 0  # nothing lapsed yet
    assert queue.expire(utcnow() + LATER) == 1  # ex1 went silent: a1 is queued again
    assert status(store, "alice", "a1") == "queued"
    with pytest.raises(LeaseLost):  # ex1's late result is not recorded
        queue.finish("ex1", token, [done("a1", "from a presumed-dead executor")])
    with pytest.raises(LeaseLost):
        queue.heartbeat("ex1", token)
    token2 = queue.register("ex2")
    assert queue.claim("ex2", token2, slots=5) == []  # backoff before it runs again
    backoff_passes(store)
    assert [(c.id, c.attempt) for c in queue.claim("ex2", token2, slots=5)] == [("a1", 2)]
    queue.expire(utcnow() + LATER)  # lost a second time: max_attempts=2, it ends
    result = store.get("alice", "a1")
    assert (result.status, result.error_code) == (EvalStatus.ERROR, "executor_lost")
    assert queue.depth() == queue.depth().__class__(queued=0, running=0, users=0)
    assert queue.reconcile() == {}


def test_a_restarted_executor_gives_up_what_it_held(store, queue):
    assert admit(queue, "alice", "a1")
    old = queue.register("ex1")
    queue.claim("ex1", old, slots=1)
    new = queue.register("ex1")  # the same executor, a new process
    assert status(store, "alice", "a1") == "queued"
    with pytest.raises(LeaseLost):
        queue.finish("ex1", old, [done("a1")])
    backoff_passes(store)
    assert [c.id for c in queue.claim("ex1", new, slots=1)] == ["a1"]
    assert list(queue.finish("ex1", new, [done("a1")])) == ["a1"]
    assert queue.reconcile() == {}


def test_cancel_queued_and_running(store, queue):
    assert admit(queue, "alice", "a1", "a2")
    token = queue.register("ex1")
    assert [c.id for c in queue.claim("ex1", token, slots=1)] == ["a1"]
    assert queue.cancel("bob", "a2") is CancelOutcome.NOT_QUEUED  # not his
    assert queue.cancel("alice", "a2") is CancelOutcome.CANCELLED
    assert status(store, "alice", "a2") == "cancelled"
    assert queue.heartbeat("ex1", token) == []
    assert queue.cancel("alice", "a1") is CancelOutcome.REQUESTED
    assert queue.heartbeat("ex1", token) == ["a1"]  # the executor is told, kills, reports
    queue.expire(utcnow() + LATER)  # ...or dies first: a cancelled one is not run again
    assert status(store, "alice", "a1") == "cancelled"
    assert queue.cancel("alice", "a1") is CancelOutcome.NOT_QUEUED
    assert queue.reconcile() == {}


def test_work_that_waits_too_long_ends_with_its_reason(store, queue):
    assert admit(queue, "alice", "a1")
    queue.expire(utcnow() + timedelta(seconds=queue.config.queue_timeout_s + 1))
    result = store.get("alice", "a1")
    assert (result.status, result.error_code) == (EvalStatus.ERROR, "queue_timeout")
    assert queue.reconcile() == {}


def test_a_request_that_does_not_open_never_runs(store, queue):
    assert admit(queue, "alice", "a1", "a2")
    other_key = DurableQueue(store, Sealer.generate())
    token = other_key.register("ex1")
    assert other_key.claim("ex1", token, slots=5) == []
    result = store.get("alice", "a1")
    assert (result.status, result.error_code) == (EvalStatus.ERROR, "internal")
    assert queue.depth().queued == 0 and queue.reconcile() == {}


def test_judged_results_and_erasure(store, queue):
    assert admit(queue, "alice", "j1", kind="judge")
    assert admit(queue, "alice", "a2", "a3")
    token = queue.register("ex1")
    assert len(queue.claim("ex1", token, slots=3)) == 3
    judged = JudgeResult(id="j1", status=EvalStatus.SUCCEEDED, verdict="AC", score=1.0,
                         passed=3, total=3, language="python", image="python",
                         compare_version="1", driver_version="1", finished_at=utcnow())  # fmt: skip
    assert queue.finish("ex1", token, [judged]) == {"j1": "alice"}
    assert store.get_judgement("alice", "j1").verdict == "AC"
    queue.finish("ex1", token, [done("a2")])
    finals = store.final_results("alice", ["j1", "a2", "a3", "unknown"])  # one query, both kinds
    assert sorted((type(r).__name__, r.id) for r in finals) == [
        ("EvalResult", "a2"), ("JudgeResult", "j1")]  # fmt: skip
    assert store.final_results("bob", ["j1", "a2"]) == [] and store.final_results("alice", []) == []
    store.delete_user("alice")  # GDPR: queued code goes with the records
    assert queue.depth().queued == 0 and queue.depth().running == 0
    assert queue.finish("ex1", token, [done("a3")]) == {}  # running when erased: dropped
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM queue_items")).scalar() == 0


def test_concurrent_claimers_take_each_evaluation_exactly_once(store, queue):
    users, per_user, claimers = 4, 60, 4
    admitted = threading.Barrier(users + claimers)
    taken: list[list[str]] = [[] for _ in range(claimers)]
    errors: list[BaseException] = []
    admitting = threading.Semaphore(0)  # released once per admitter done

    def admitter(u: int) -> None:
        try:
            admitted.wait()
            for i in range(0, per_user, 5):
                assert admit(queue, f"user{u}", *[f"u{u}-{i + k}" for k in range(5)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            admitting.release()

    done_admitting = threading.Event()

    def watcher() -> None:
        for _ in range(users):
            admitting.acquire()
        done_admitting.set()

    def claimer(n: int) -> None:
        try:
            token = queue.register(f"ex{n}")
            admitted.wait()
            idle = 0
            while idle < 3:  # empty three times after every admission: nothing is left
                finished = done_admitting.is_set()
                got = queue.claim(f"ex{n}", token, slots=3)
                taken[n].extend(c.id for c in got)
                recorded = queue.finish(f"ex{n}", token, [done(c.id) for c in got])
                assert sorted(recorded) == sorted(c.id for c in got)
                idle = 0 if got or not finished else idle + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=admitter, args=(u,)) for u in range(users)]
    threads += [threading.Thread(target=claimer, args=(n,)) for n in range(claimers)]
    threads.append(threading.Thread(target=watcher))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    every = [eval_id for ids in taken for eval_id in ids]
    assert len(every) == len(set(every)) == users * per_user  # all of them, none twice
    assert sum(1 for ids in taken if ids) >= 2  # the claimers really competed
    assert queue.depth().queued == queue.depth().running == 0
    assert queue.reconcile() == {}
    assert all(r.status is EvalStatus.SUCCEEDED for u in range(users)
               for r in store.for_user(f"user{u}"))  # fmt: skip


def test_one_exchange_records_gives_back_and_claims(store, queue):
    assert admit(queue, "alice", "a1", "a2", "a3")
    token = queue.register("ex1")
    assert [c.id for c in queue.claim("ex1", token, slots=2)] == ["a1", "a2"]
    # a1 ran; a2's sandbox did not start (given back); one slot asks for more.
    answer = queue.exchange("ex1", token, results=[done("a1")], give_back=["a2"], slots=1)
    assert answer.recorded == {"a1": "alice"} and [c.id for c in answer.claimed] == ["a3"]
    assert status(store, "alice", "a1") == "succeeded" and status(store, "alice", "a2") == "queued"
    backoff_passes(store)
    assert [(c.id, c.attempt) for c in queue.claim("ex1", token, slots=5)] == [("a2", 2)]
    with pytest.raises(LeaseLost):  # nothing changes under a lost lease
        queue.exchange("ex1", "not-the-token", results=[done("a3")], slots=5)
    assert status(store, "alice", "a3") == "running"
    assert queue.reconcile() == {}


def test_admission_records_refused_items_as_ended_in_the_same_transaction(store, queue):
    refused = NewEvaluation(id="bad", user="alice", code=CODE, language="python")
    ended = EvalResult(id="bad", status=EvalStatus.ERROR, language="python",
                       error="timeout_s: too long", error_code="invalid_request")  # fmt: skip
    entries = [(NewEvaluation(id="good", user="alice", code=CODE, language="python"), REQUEST)]
    assert queue.admit(entries, user_limit=1, ended=[(refused, ended)])
    assert (status(store, "alice", "good"), status(store, "alice", "bad")) == ("queued", "error")
    assert store.get("alice", "bad").error_code == "invalid_request"
    assert queue.depth().queued == 1  # the ended one is not queued, nor counted to the limit
    more = NewEvaluation(id="more", user="alice", code=CODE, language="python")
    bad2 = NewEvaluation(id="bad2", user="alice", code=CODE, language="python")
    assert not queue.admit([(more, REQUEST)], user_limit=1, ended=[(bad2, ended)])
    assert store.get("alice", "bad2") is None  # refused whole: nothing written


def test_final_among_and_live_executors(store, queue):
    assert admit(queue, "alice", "a1", "a2", "a3")
    token = queue.register("ex1")
    queue.register("ex2")
    queue.claim("ex1", token, slots=2)
    assert queue.executors() == {"ex1": 2, "ex2": 0}
    queue.finish("ex1", token, [done("a1")])
    assert store.final_among(["a1", "a2", "a3", "unknown"]) == {"a1"}
    assert store.final_among([]) == set()
    assert queue.executors() == {"ex1": 1, "ex2": 0}
    queue.expire(now=utcnow() + LATER)  # both leases lapse
    assert queue.executors() == {}
