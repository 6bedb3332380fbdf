"""Which queued evaluation gets the next free slot (pure): the user with the fewest running,
then the longest-waiting; first in first out within a user."""

from __future__ import annotations

from crucible_ray.execution.fairness import FairQueue


def flood_then_one() -> FairQueue:
    queue = FairQueue()
    for n in range(10):
        queue.append("alice", f"a{n}", queued_at=float(n))
    queue.append("bob", "b0", queued_at=20.0)
    return queue


def test_a_late_user_with_nothing_running_goes_before_a_flood():
    queue = flood_then_one()
    assert queue.pop_next({"alice": 2}) == "b0"  # alice holds the slots: bob's turn
    assert queue.pop_next({"alice": 2, "bob": 1}) == "a0"  # then alice, in her own order
    assert queue.pop_next({"alice": 2, "bob": 1}) == "a1"


def test_a_global_fifo_is_what_remains_when_nobody_runs_anything():
    queue = flood_then_one()
    assert [queue.pop_next({}) for _ in range(3)] == ["a0", "a1", "a2"]  # oldest head first


def test_users_with_equal_running_take_turns_by_who_waited_longest():
    queue = FairQueue()
    queue.append("alice", "a0", 1.0)
    queue.append("alice", "a1", 2.0)
    queue.append("bob", "b0", 1.5)
    running = {"alice": 1, "bob": 1}
    assert queue.pop_next(running) == "a0"
    running["alice"] += 1
    assert queue.pop_next(running) == "b0"


def test_a_retry_goes_first_for_its_user_and_counts_are_kept():
    queue = flood_then_one()
    queue.appendleft("alice", "again", queued_at=30.0)
    assert (len(queue), queue.queued_by("alice"), queue.queued_by("carol")) == (12, 11, 0)
    assert queue.pop_next({"bob": 1}) == "again"
    queue.remove("a5")
    queue.remove("b0")
    assert "a5" not in queue and "b0" not in queue and len(queue) == 9
    assert queue.queued_by("bob") == 0


def test_expiry_takes_every_user_s_old_entries_and_nothing_newer():
    queue = flood_then_one()
    assert sorted(queue.expired(before=3.0)) == ["a0", "a1", "a2"]
    assert len(queue) == 8 and queue.pop_next({}) == "a3"
    assert list(queue.expired(before=100.0))[-1] == "b0" and not queue
