"""Admission to the durable queue with the plane's limits (``execution/admitter.py``), against
a real SQLite file and a real PostgreSQL server: the one path ingress replicas and the
Dispatch actors share."""

from __future__ import annotations

import time

import pytest

from crucible_ray.execution import admitter as admitter_module
from crucible_ray.execution.admitter import QueueAdmitter
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.store import NewEvaluation
from crucible_ray.store.queue import DurableQueue
from crucible_ray.store.sealing import Sealer

UNAVAILABLE_AFTER_S = 0.3


@pytest.fixture
def queue(store) -> DurableQueue:
    return DurableQueue(store, Sealer.generate())


@pytest.fixture(autouse=True)
def check_often(monkeypatch):
    monkeypatch.setattr(admitter_module, "EXECUTORS_CHECK_S", 0.05)


def entries(user: str, *ids: str) -> list[tuple[NewEvaluation, bytes]]:
    return [(NewEvaluation(id=i, user=user, code="print(1)", language="python"), b"work")
            for i in ids]  # fmt: skip


def admitter(queue: DurableQueue, **config) -> QueueAdmitter:
    return QueueAdmitter(queue, DispatcherConfig(unavailable_after_s=UNAVAILABLE_AFTER_S,
                                                 **config))  # fmt: skip


def test_with_no_live_executor_for_a_while_admission_is_refused_and_nothing_recorded(store, queue):
    fresh = admitter(queue)
    assert fresh.admit("alice", entries("alice", "a1"))["accepted"]  # executors still starting
    time.sleep(UNAVAILABLE_AFTER_S + 0.1)
    answer = fresh.admit("alice", entries("alice", "a2"))
    assert answer["accepted"] is False and answer["reason"] == "no_executor", answer
    assert "none has been live" in answer["message"]
    assert store.get("alice", "a2") is None and queue.depth().queued == 1

    queue.register("ex1")  # an executor that passed its host check takes a lease
    time.sleep(0.1)
    assert fresh.admit("alice", entries("alice", "a3"))["accepted"]

    scale_to_zero = admitter(queue, min_actors=0)  # an idle pool has none by design
    queue.retire("ex1", queue.register("ex1"))
    time.sleep(UNAVAILABLE_AFTER_S + 0.1)
    assert scale_to_zero.admit("alice", entries("alice", "a4"))["accepted"]


def test_global_and_per_user_limits_refuse_whole_admissions(store, queue):
    queue.register("ex1")
    limits = admitter(queue, max_pending=4, max_pending_per_user=3)
    assert limits.admit("alice", entries("alice", "a1", "a2"))["accepted"]
    answer = limits.admit("alice", entries("alice", "a3", "a4"))  # 4 > alice's 3
    assert (answer["reason"], answer["retry_after_s"]) == ("overloaded", 1.0), answer
    assert "per user" in answer["message"]
    assert limits.admit("bob", entries("bob", "b1", "b2"))["accepted"]
    answer = limits.admit("carol", entries("carol", "c1"))  # 5 > 4 in all
    assert answer["reason"] == "overloaded" and "limit 4" in answer["message"], answer
    assert [store.get(u, i) is None for u, i in [("alice", "a3"), ("carol", "c1")]] == [True] * 2
    assert queue.depth().queued == 4
