"""The queue's per-user counters (``tables.QueueUser``), changed only inside the transaction
that moves the items they count."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select, update

from crucible_ray.store.tables import QueueItem, QueueUser

QUEUED, LEASED = "queued", "leased"


def adjust(
    session: Connection,
    queued: Mapping[str, int] | None = None,
    running: Mapping[str, int] | None = None,
    served: set[str] | None = None,
    now: datetime | None = None,
) -> None:
    """Add the deltas to each user's counters, and mark the ``served`` users served ``now``
    (claims rank users by it). One executemany; users in sorted order, so two transactions
    that both touch Alice's and Bob's rows lock them in the same order and never deadlock."""
    queued, running, served = queued or {}, running or {}, served or set()
    rows = [
        {"who": user, "d_queued": queued.get(user, 0), "d_running": running.get(user, 0),
         "served_now": now if user in served else None}
        for user in sorted(set(queued) | set(running) | served)
        if queued.get(user, 0) or running.get(user, 0) or user in served
    ]  # fmt: skip
    if not rows:
        return
    table = QueueUser.__table__
    session.execute(
        update(table)
        .where(table.c.user == bindparam("who"))
        .values(queued=table.c.queued + bindparam("d_queued"),
                running=table.c.running + bindparam("d_running"),
                served_at=func.coalesce(bindparam("served_now", type_=table.c.served_at.type),
                                        table.c.served_at)),
        rows,
    )  # fmt: skip


def recount(session: Connection) -> dict[str, tuple[int, int]]:
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
