"""The queue's per-user counters (``tables.QueueUser``), changed only inside the transaction
that moves the items they count."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crucible_ray.store.tables import QueueItem, QueueUser

QUEUED, LEASED = "queued", "leased"


def adjust(
    session: Session,
    queued: Mapping[str, int] | None = None,
    running: Mapping[str, int] | None = None,
    served_at: datetime | None = None,
) -> None:
    """Add the deltas to each user's counters. Users in sorted order: two transactions that
    both touch Alice's and Bob's rows lock them in the same order, so they never deadlock."""
    queued, running = queued or {}, running or {}
    for user in sorted(set(queued) | set(running)):
        values = {
            "queued": QueueUser.queued + queued.get(user, 0),
            "running": QueueUser.running + running.get(user, 0),
        }
        if served_at is not None:
            values["served_at"] = served_at  # type: ignore[assignment]
        session.execute(update(QueueUser).where(QueueUser.user == user).values(**values))


def recount(session: Session) -> dict[str, tuple[int, int]]:
    """Each user's (queued, leased) counted from the items themselves."""
    rows = session.execute(
        select(QueueItem.user, QueueItem.state, func.count()).group_by(
            QueueItem.user, QueueItem.state
        )
    )
    counts: dict[str, list[int]] = {}
    for user, state, count in rows:
        counts.setdefault(user, [0, 0])[0 if state == QUEUED else 1] += count
    return {user: (queued, leased) for user, (queued, leased) in counts.items()}
