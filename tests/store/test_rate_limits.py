"""Per-user token buckets in the store (the queue plane's rate limit), on SQLite and
PostgreSQL: a burst up to the limit, refill over time, refunds, users apart, and concurrent
takers that never spend more than the bucket holds."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from crucible_ray.store.rate_limits import StoreRateLimits
from crucible_ray.store.store import RATE_BUCKET_IDLE_S
from crucible_ray.store.tables import RateBucket

T0 = 1_800_000_000.0


def test_a_burst_up_to_the_limit_then_the_refill_rate(store):
    limits = StoreRateLimits(store, per_minute=6)  # one token every 10 s
    assert [limits.take("alice", T0) for _ in range(6)] == [0.0] * 6
    assert limits.take("alice", T0) == 10.0  # the next token's time
    assert limits.take("alice", T0 + 4) == 6.0
    assert limits.take("alice", T0 + 10) == 0.0  # refilled one
    assert limits.take("alice", T0 + 10) > 0
    assert limits.take("bob", T0) == 0.0  # users apart


def test_a_refund_gives_the_token_back_but_never_beyond_the_limit(store):
    limits = StoreRateLimits(store, per_minute=2)
    assert limits.take("alice", T0) == 0.0 and limits.take("alice", T0) == 0.0
    assert limits.take("alice", T0) > 0
    limits.give_back("alice", T0)
    assert limits.take("alice", T0) == 0.0
    for _ in range(5):
        limits.give_back("alice", T0 + 600)
    assert [limits.take("alice", T0 + 600) for _ in range(3)][:2] == [0.0, 0.0]
    assert limits.take("alice", T0 + 600) > 0  # capped at 2, not 5 + refill


def test_concurrent_takers_never_spend_more_than_the_bucket(store):
    limits = StoreRateLimits(store, per_minute=20)
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            answer = limits.take("alice", T0)
            with lock:
                granted.append(answer)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(0.0) == 20 and len(granted) == 40


def test_erasing_data_does_not_reset_the_limit_and_idle_buckets_are_purged(store):
    limits = StoreRateLimits(store, per_minute=1)
    now = time.time()
    assert limits.take("alice", now) == 0.0
    store.delete_user("alice")  # anyone may erase their data: that must not buy a new token
    assert limits.take("alice", now) > 0
    assert limits.take("bob", now - 2 * RATE_BUCKET_IDLE_S) == 0.0  # idle since long ago
    store.purge(timedelta(days=30))
    with store.connect() as conn:
        users = set(conn.scalars(select(RateBucket.user)))
    assert users == {"alice"}
