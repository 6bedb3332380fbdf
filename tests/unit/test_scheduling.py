"""The queue plane's pure decisions: fair claims, bytes per claim, lost leases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from crucible_ray.execution.scheduling import (
    Fate,
    UserLoad,
    after_lost_lease,
    plan_claim,
    retry_delay_s,
    within_bytes,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_flood_shares_slots_with_a_newcomer():
    loads = [UserLoad("flood", running=0, queued=1000, served_at=T0),
             UserLoad("newcomer", running=0, queued=2)]  # fmt: skip
    grants = plan_claim(loads, slots=4)
    assert grants[0] == "newcomer"  # never served: first among equals
    assert Counter(grants) == {"flood": 2, "newcomer": 2}


def test_fewest_running_first_then_longest_unserved():
    loads = [
        UserLoad("busy", running=5, queued=10, served_at=T0),
        UserLoad("idle-late", running=0, queued=10, served_at=T0 + timedelta(seconds=5)),
        UserLoad("idle-early", running=0, queued=10, served_at=T0 + timedelta(seconds=1)),
    ]
    grants = plan_claim(loads, slots=6)
    assert grants[:2] == ["idle-early", "idle-late"]
    # Each idle user climbs to 3 running before busy (5 running) gets anything.
    assert Counter(grants) == {"idle-early": 3, "idle-late": 3}
    assert Counter(plan_claim(loads, slots=16))["busy"] == 2  # then all three level up to 7


def test_never_more_than_queued_nor_slots():
    loads = [UserLoad("a", 0, 1), UserLoad("b", 0, 2), UserLoad("idle", 0, 0)]
    assert Counter(plan_claim(loads, slots=100)) == {"a": 1, "b": 2}
    assert plan_claim(loads, slots=0) == [] and plan_claim([], slots=5) == []
    assert plan_claim(loads, slots=-1) == []


def test_naive_and_aware_times_compare():
    day_before = (T0 - timedelta(days=1)).replace(tzinfo=None)
    loads = [UserLoad("aware", 0, 1, served_at=T0), UserLoad("naive", 0, 1, served_at=day_before)]
    assert plan_claim(loads, slots=1) == ["naive"]


def test_bytes_cap_keeps_at_least_one():
    assert within_bytes([10, 10, 10], max_bytes=25) == 2
    assert within_bytes([100, 1], max_bytes=25) == 1  # too big alone: still runs, alone
    assert within_bytes([5, 5], max_bytes=10) == 2
    assert within_bytes([], max_bytes=10) == 0


def test_lost_work_is_retried_a_bounded_number_of_times_with_backoff():
    assert after_lost_lease(1, max_attempts=3) is Fate.RETRY
    assert after_lost_lease(3, max_attempts=3) is Fate.FAIL
    delays = [retry_delay_s(n) for n in range(1, 10)]
    assert delays == sorted(delays) and delays[0] == 0.5 and delays[-1] == 10.0
