"""The durable queue: accepted evaluations wait in the store, not in any process's memory.

Admission writes the evaluation's record and its sealed request in one transaction, so an
accepted evaluation survives the death of any process. Executors claim work for their free
slots under a lease (``leases.py``); the fair share is planned by
``execution/scheduling.plan_claim`` from the per-user counters, and the items are taken with
``FOR UPDATE SKIP LOCKED`` so concurrent claims never wait for or take the same item. A result
is recorded, and the item with its sealed request deleted, in one transaction that checks the
lease's token: a result from an executor presumed dead is dropped, never recorded twice.

On SQLite (one machine) writers are serialized by the database; every transaction here starts
with a write, so it holds the lock before it reads anything it will change.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crucible_ray.execution.scheduling import UserLoad, plan_claim, within_bytes
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult, EvalStatus, utcnow
from crucible_ray.reasons import Reason
from crucible_ray.store.judgements import judgement_values
from crucible_ray.store.leases import Leases, QueueConfig, end_records
from crucible_ray.store.queue_counts import LEASED, QUEUED, adjust, recount
from crucible_ray.store.sealing import Sealer, SealError
from crucible_ray.store.store import EvalStore, NewEvaluation, result_values
from crucible_ray.store.tables import Evaluation, QueueItem, QueueUser

# Literal values: an executemany cannot expand a list parameter.
UNFINISHED = [literal(s.value) for s in EvalStatus if not s.is_final]

__all__ = ["Claimed", "DurableQueue", "Exchanged", "QueueConfig", "QueueDepth"]


@dataclass(frozen=True)
class Claimed:
    """One evaluation leased to the executor that claimed it."""

    id: str
    request: bytes  # as admitted (opened from its seal)
    attempt: int  # 1 on the first claim


@dataclass(frozen=True)
class Exchanged:
    recorded: dict[str, str]  # eval_id: user, of the results recorded
    claimed: list[Claimed]


@dataclass(frozen=True)
class QueueDepth:
    queued: int
    running: int
    users: int  # users with work queued or running


class DurableQueue(Leases):
    def __init__(self, store: EvalStore, sealer: Sealer, config: QueueConfig | None = None):
        self.store = store
        self.config = config or QueueConfig()
        self._session = store._session  # one engine, one schema: the records and the queue
        self._sealer = sealer

    # admission -------------------------------------------------------------------------------

    def admit(
        self, entries: Sequence[tuple[NewEvaluation, bytes]], user_limit: int | None = None,
        ended: Sequence[tuple[NewEvaluation, EvalResult]] = (),
    ) -> bool:  # fmt: skip
        """Record evaluations of one user and queue their requests, all or none. False (and
        nothing written) if the user's queued plus running would pass ``user_limit``.
        ``ended`` are recorded with their final result in the same transaction (a batch's
        items that the policy refused), and never queued."""
        if not entries and not ended:
            return True
        user = (entries or ended)[0][0].user
        if any(new.user != user for new, _ in (*entries, *ended)):
            raise ValueError("one admission is one user's")
        if user_limit is not None and len(entries) > user_limit:
            return False
        now = utcnow()
        deadline = now + timedelta(seconds=self.config.queue_timeout_s)
        with self._session.begin() as session:
            if entries and not self._reserve(session, user, len(entries), user_limit):
                return False
            session.add_all(new.row(now) for new, _ in entries)
            session.add_all(_ended_row(new, result, now) for new, result in ended)
            session.add_all(
                QueueItem(
                    id=new.id,
                    user=user,
                    state=QUEUED,
                    size=len(request),
                    sealed=self._sealer.seal(new.id, request),
                    attempts=0,
                    queued_at=now,
                    not_before=now,
                    deadline=deadline,
                    cancel=False,
                )
                for new, request in entries
            )
        return True

    def _reserve(self, session: Session, user: str, count: int, limit: int | None) -> bool:
        """Add ``count`` to the user's queued counter if it stays within ``limit``: one
        conditional upsert, so two replicas admitting for one user cannot both pass it."""
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        fits = None if limit is None else QueueUser.queued + QueueUser.running + count <= limit
        statement = (
            insert(QueueUser)
            .values(user=user, queued=count, running=0)
            .on_conflict_do_update(
                index_elements=[QueueUser.user],
                set_={"queued": QueueUser.queued + count},
                where=fits,
            )
            .returning(QueueUser.queued)
        )
        return session.execute(statement).first() is not None

    # claims and results ----------------------------------------------------------------------

    def exchange(
        self, executor: str, token: str, results: Sequence[EvalResult | JudgeResult] = (),
        give_back: Sequence[str] = (), slots: int = 0, max_bytes: int | None = None,
    ) -> Exchanged:  # fmt: skip
        """An executor's one call per round, in one transaction: record its final results,
        take back what it could not run (queued again, the try counted), lease it up to
        ``slots`` more (``max_bytes`` of requests, at least one), fairly between users, and
        renew its lease. Raises LeaseLost, changing nothing, if its lease is gone.

        A result for an evaluation no longer leased to this executor under this token (queued
        again, cancelled while queued, erased) is dropped."""
        now = utcnow()
        with self._begin() as session:
            self._renew(session, executor, token, now)
            recorded = self._record(session, executor, token, results) if results else {}
            if give_back:
                mine = (QueueItem.executor == executor) & (QueueItem.token == token)
                self._lost(session, mine & QueueItem.id.in_(list(give_back)), now)
            claimed, taken = self._lease(session, executor, token, slots, max_bytes, now)
            ended = Counter(recorded.values())
            adjust(session, queued={u: -n for u, n in taken.items()},
                   running={u: taken[u] - ended[u] for u in taken.keys() | ended.keys()},
                   served=set(taken), now=now)  # fmt: skip
        return Exchanged(recorded, claimed)

    def claim(self, executor: str, token: str, slots: int,
              max_bytes: int | None = None) -> list[Claimed]:  # fmt: skip
        return self.exchange(executor, token, slots=slots, max_bytes=max_bytes).claimed

    def finish(self, executor: str, token: str,
               results: Sequence[EvalResult | JudgeResult]) -> dict[str, str]:  # fmt: skip
        """The ids recorded, each with its user (see :meth:`exchange`)."""
        return self.exchange(executor, token, results=results).recorded

    def _lease(
        self, session: Connection, executor: str, token: str, slots: int,
        max_bytes: int | None, now: datetime,
    ) -> tuple[list[Claimed], Counter[str]]:  # fmt: skip
        if slots <= 0:
            return [], Counter()
        max_bytes = self.config.max_claim_bytes if max_bytes is None else max_bytes
        loads = session.execute(
            select(QueueUser.user, QueueUser.running, QueueUser.queued, QueueUser.served_at)
            .where(QueueUser.queued > 0)
        )  # fmt: skip
        grants = plan_claim([UserLoad(*row) for row in loads], slots)
        candidates: dict[str, deque[tuple[str, int]]] = {u: deque() for u in grants}
        for row in _candidates(session, Counter(grants), now):
            candidates[row.user].append((row.id, row.size))
        picked = [candidates[user].popleft() for user in grants if candidates[user]]
        picked = picked[: within_bytes([size for _, size in picked], max_bytes)]
        if not picked:
            return [], Counter()
        leased = session.execute(
            update(QueueItem)
            .where(QueueItem.id.in_([eval_id for eval_id, _ in picked]),
                   QueueItem.state == QUEUED)
            .values(state=LEASED, executor=executor, token=token,
                    attempts=QueueItem.attempts + 1)
            .returning(QueueItem.id, QueueItem.user, QueueItem.sealed, QueueItem.attempts)
        ).all()  # fmt: skip
        session.execute(
            update(Evaluation)
            .where(Evaluation.id.in_([row.id for row in leased]),
                   Evaluation.status == EvalStatus.QUEUED.value)
            .values(status=EvalStatus.RUNNING.value)
        )  # fmt: skip
        claimed, unreadable = [], []
        for row in leased:
            try:
                claimed.append(Claimed(row.id, self._sealer.open(row.id, row.sealed),
                                       row.attempts))  # fmt: skip
            except SealError:  # another key, or altered at rest: never run, say so
                unreadable.append(row.id)
        taken = Counter(row.user for row in leased)
        if unreadable:
            self._drop(session, unreadable)  # counted out of running here...
            end_records(session, unreadable, EvalStatus.ERROR, Reason.INTERNAL, now)
        return claimed, taken  # ...and into it by the caller, so they even out

    def _record(self, session: Connection, executor: str, token: str,
                results: Sequence[EvalResult | JudgeResult]) -> dict[str, str]:  # fmt: skip
        """Write the results of items still leased to this executor under this token, and
        delete those items with their sealed requests. Returns eval_id: user of those."""
        mine = {
            row.id: row.user
            for row in session.execute(
                delete(QueueItem)
                .where(QueueItem.id.in_([result.id for result in results]),
                       QueueItem.executor == executor, QueueItem.token == token,
                       QueueItem.state == LEASED)
                .returning(QueueItem.id, QueueItem.user)
            )
        }  # fmt: skip
        rows = [{"_id": r.id, **_values(r)} for r in results if r.id in mine]
        table = Evaluation.__table__
        for columns in {tuple(sorted(row)) for row in rows}:  # one executemany per shape
            session.execute(
                update(table)
                .where(table.c.id == bindparam("_id"), table.c.status.in_(UNFINISHED))
                .values({name: bindparam(name) for name in columns if name != "_id"}),
                [row for row in rows if tuple(sorted(row)) == columns],
            )
        return mine

    def _drop(self, session: Connection, eval_ids: list[str]) -> None:
        """Delete leased items (their sealed requests with them) and count them out."""
        gone = session.execute(
            QueueItem.__table__.delete()
            .where(QueueItem.id.in_(eval_ids), QueueItem.state == LEASED)
            .returning(QueueItem.user)
        ).all()
        adjust(session, running={u: -n for u, n in Counter(row.user for row in gone).items()})

    # reads and upkeep ------------------------------------------------------------------------

    def depth(self) -> QueueDepth:
        with self._begin() as session:
            row = session.execute(
                select(func.coalesce(func.sum(QueueUser.queued), 0),
                       func.coalesce(func.sum(QueueUser.running), 0),
                       func.count().filter(QueueUser.queued + QueueUser.running > 0))
            ).one()  # fmt: skip
        return QueueDepth(queued=row[0], running=row[1], users=row[2])

    def reconcile(self) -> dict[str, tuple[int, int]]:
        """Set every user's counters to what the items say. Returns the users whose counters
        were wrong (user: (queued, running) before): empty unless there is a defect."""
        with self._begin() as session:
            session.execute(update(QueueUser).values(queued=QueueUser.queued))  # write lock
            actual = recount(session)
            wrong = {}
            for user, queued, running in session.execute(
                select(QueueUser.user, QueueUser.queued, QueueUser.running)
            ):
                if (queued, running) != actual.get(user, (0, 0)):
                    wrong[user] = (queued, running)
            for user in actual.keys() - {u for (u,) in session.execute(select(QueueUser.user))}:
                wrong[user] = (0, 0)
                session.execute(insert(QueueUser).values(user=user, queued=0, running=0))
            for user in sorted(wrong):
                queued, running = actual.get(user, (0, 0))
                session.execute(
                    update(QueueUser)
                    .where(QueueUser.user == user)
                    .values(queued=queued, running=running)
                )
        return wrong


def _candidates(session: Connection, counts: Counter[str], now: datetime) -> list[Any]:
    """Each user's oldest ready items, as many as planned, locked without waiting for (or
    taking) what another claim holds (SQLite ignores the lock: its writers are serialized).
    One query per user: a single LATERAL join over all of them measured slower per round
    (its statement is compiled anew each time)."""
    ready = (QueueItem.state == QUEUED, QueueItem.not_before <= now, QueueItem.deadline > now)
    return [
        row
        for user, count in counts.items()
        for row in session.execute(
            select(QueueItem.id, QueueItem.size, QueueItem.user)
            .where(QueueItem.user == user, *ready)
            .order_by(QueueItem.queued_at, QueueItem.id)
            .limit(count)
            .with_for_update(skip_locked=True)
        )
    ]


def _values(result: EvalResult | JudgeResult) -> dict[str, object]:
    if isinstance(result, JudgeResult):
        return judgement_values(result)
    return result_values(result)


def _ended_row(new: NewEvaluation, result: EvalResult, now: datetime) -> Evaluation:
    row = new.row(now)
    for name, value in result_values(result).items():
        setattr(row, name, value)
    return row
