"""Pure decisions of the queue plane (docs/design/execution-plane.md): who gets free slots,
how many bytes a claim may carry, and what happens to work whose executor was lost.

No I/O: the durable queue (``store/queue.py``) reads the state, asks these functions, and
writes their answer in the same transaction, so every choice here is unit-tested alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


@dataclass(frozen=True)
class UserLoad:
    """One user's share of the queue when a claim is planned."""

    user: str
    running: int  # leased to an executor now
    queued: int  # waiting and ready to run
    served_at: datetime | None = None  # when a claim last took this user's work (None: never)


def plan_claim(loads: Iterable[UserLoad], slots: int) -> list[str]:
    """Whose queued evaluation fills each of ``slots`` free slots, in the order granted.

    Each slot goes to the user with the fewest running (counting what this claim already gave
    them); ties go to the user served longest ago, a never-served user first. So a user with a
    flood queued gets turns with everyone else instead of every slot, and a newcomer's first
    evaluation waits for at most one free slot.
    """
    waiting = [load for load in loads if load.queued > 0]
    # Rank by when each was last served (never first); a user served by this claim goes behind
    # everyone already ranked, in the order this claim served them.
    waiting.sort(key=lambda load: (load.served_at is not None, _naive(load.served_at), load.user))
    heap = [(load.running, rank, load.user, load.queued) for rank, load in enumerate(waiting)]
    heapq.heapify(heap)
    grants: list[str] = []
    rank = len(heap)
    for _ in range(max(slots, 0)):
        if not heap:
            break
        running, _, user, queued = heapq.heappop(heap)
        grants.append(user)
        if queued > 1:
            heapq.heappush(heap, (running + 1, rank, user, queued - 1))
            rank += 1
    return grants


def within_bytes(sizes: Sequence[int], max_bytes: int) -> int:
    """How many items, in order, one claim carries: as many as fit in ``max_bytes`` and always
    at least one (an item larger than the cap still runs, alone)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if count and total > max_bytes:
            return count
    return len(sizes)


class Fate(Enum):
    RETRY = "retry"  # queued again, ahead of the user's other work
    FAIL = "fail"  # ends as an error (executor_lost): it has been tried enough times


def after_lost_lease(attempts: int, max_attempts: int) -> Fate:
    """What happens to an evaluation whose executor stopped renewing its lease, after
    ``attempts`` claims. An evaluation that kills every executor it reaches must not go on
    taking executors down, so tries are bounded."""
    return Fate.RETRY if attempts < max_attempts else Fate.FAIL


def retry_delay_s(attempts: int, base_s: float = 0.5, cap_s: float = 10.0) -> float:
    """Backoff before a lost evaluation may be claimed again (exponential, capped): a node
    that is failing gets time to be noticed before the same work lands there again."""
    return min(cap_s, base_s * 2 ** max(attempts - 1, 0))


def _naive(moment: datetime | None) -> datetime:
    """Comparable across databases: SQLite hands back naive UTC, Postgres aware UTC."""
    return (moment or datetime.min).replace(tzinfo=None)
