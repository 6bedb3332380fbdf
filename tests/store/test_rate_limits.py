"""Per-user token buckets in the store (the queue plane's rate limit), on SQLite and
PostgreSQL: a burst up to the limit, refill over time, refunds, users apart, and concurrent
takers that never spend more than the bucket holds."""

from __future__ import annotations

import threading

from crucible_ray.store.rate_limits import StoreRateLimits

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


def test_erasing_a_user_erases_the_bucket(store):
    limits = StoreRateLimits(store, per_minute=1)
    assert limits.take("alice", T0) == 0.0
    store.delete_user("alice")
    assert limits.take("alice", T0) == 0.0
