"""Executors' leases on the durable queue's work, and what happens to work off the happy path:
a lease that lapses (its executor or node died), an executor that registers again, a cancel,
an evaluation that waited too long.

One lease per executor, not per item: a heartbeat is one row update whatever the executor
holds. Each registration gets a new random token, and every claim and result names it, so a
result from an executor whose lease was given up (presumed dead, then back) is dropped.
"""

from __future__ import annotations

import secrets
from collections import Counter
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Connection, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crucible_ray.errors import LeaseLost
from crucible_ray.execution.scheduling import Fate, after_lost_lease, retry_delay_s
from crucible_ray.models import FINAL, EvalStatus, utcnow
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.store.queue_counts import LEASED, QUEUED, adjust
from crucible_ray.store.tables import Evaluation, ExecutorLease, QueueItem

if TYPE_CHECKING:
    from crucible_ray.store.store import EvalStore


class QueueConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    lease_ttl_s: float = Field(10.0, gt=0, description="an executor silent this long is lost")
    max_attempts: int = Field(3, ge=1, description="claims of one evaluation before it fails")
    queue_timeout_s: float = Field(300.0, gt=0, description="longest wait for a free slot")
    retry_backoff_s: float = Field(0.5, ge=0, description="first wait before lost work reruns")
    max_claim_bytes: int = Field(8 << 20, gt=0, description="requests carried by one claim")


class CancelOutcome(Enum):
    CANCELLED = "cancelled"  # it was queued: it ends cancelled now
    REQUESTED = "requested"  # it runs: its executor is told at its next heartbeat
    NOT_QUEUED = "not_queued"  # not in the queue (final already, unknown, or another user's)


class Leases:
    config: QueueConfig
    store: EvalStore

    def _begin(self) -> AbstractContextManager[Connection]:
        return self.store.begin()

    def register(self, executor: str) -> str:
        """Start (or restart) an executor's lease; returns its token. Work still held under
        an earlier registration of the same executor was lost with that process: it is
        queued again (or ends) now rather than when the old lease would have lapsed."""
        token = secrets.token_hex(16)
        now = utcnow()
        with self._begin() as session:
            insert = pg_insert if session.dialect.name == "postgresql" else sqlite_insert
            expires = now + timedelta(seconds=self.config.lease_ttl_s)
            session.execute(
                insert(ExecutorLease)
                .values(executor=executor, token=token, expires_at=expires)
                .on_conflict_do_update(
                    index_elements=[ExecutorLease.executor],
                    set_={"token": token, "expires_at": expires},
                )
            )
            self._lost(session, QueueItem.executor == executor, now)
        return token

    def heartbeat(self, executor: str, token: str) -> list[str]:
        """Renew the lease. Returns the ids of its evaluations whose cancel was asked for."""
        with self._begin() as session:
            self._renew(session, executor, token, utcnow())
            return list(
                session.scalars(
                    select(QueueItem.id).where(
                        QueueItem.executor == executor, QueueItem.token == token, QueueItem.cancel
                    )
                )
            )

    def retire(self, executor: str, token: str) -> None:
        """An executor stopping on purpose: its lease ends, and anything it still held is
        handled as lost (queued again)."""
        with self._begin() as session:
            session.execute(
                delete(ExecutorLease).where(
                    ExecutorLease.executor == executor, ExecutorLease.token == token
                )
            )
            lost = (QueueItem.executor == executor) & (QueueItem.token == token)
            self._lost(session, lost, utcnow())

    def expire(self, now: datetime | None = None) -> int:
        """Upkeep any process may run (concurrent runs are safe): end lapsed leases and queue
        their work again, and end evaluations that waited past their deadline. Returns how
        many evaluations it moved."""
        now = now or utcnow()
        with self._begin() as session:
            lapsed = session.execute(
                delete(ExecutorLease)
                .where(ExecutorLease.expires_at < now)
                .returning(ExecutorLease.executor, ExecutorLease.token)
            ).all()
            moved = 0
            for executor, token in lapsed:
                lost = (QueueItem.executor == executor) & (QueueItem.token == token)
                moved += self._lost(session, lost, now)
            late = session.execute(
                delete(QueueItem)
                .where(QueueItem.state == QUEUED, QueueItem.deadline <= now)
                .returning(QueueItem.id, QueueItem.user)
            ).all()
            adjust(session, queued={u: -n for u, n in Counter(r.user for r in late).items()})
            end_records(session, [r.id for r in late], EvalStatus.ERROR, Reason.QUEUE_TIMEOUT, now)
        return moved + len(late)

    def cancel(self, user: str, eval_id: str) -> CancelOutcome:
        with self._begin() as session:
            mine = (QueueItem.id == eval_id) & (QueueItem.user == user)
            queued = session.execute(
                delete(QueueItem).where(mine, QueueItem.state == QUEUED).returning(QueueItem.id)
            ).first()
            if queued is not None:
                adjust(session, queued={user: -1})
                end_records(session, [eval_id], EvalStatus.CANCELLED, None, utcnow())
                return CancelOutcome.CANCELLED
            asked = session.execute(
                update(QueueItem).where(mine, QueueItem.state == LEASED).values(cancel=True)
            )
            return CancelOutcome.REQUESTED if asked.rowcount else CancelOutcome.NOT_QUEUED

    def executors(self) -> dict[str, int]:
        """The executors whose lease is live, each with how many evaluations it holds."""
        held = (
            (QueueItem.executor == ExecutorLease.executor)
            & (QueueItem.token == ExecutorLease.token)
            & (QueueItem.state == LEASED)
        )
        query = (
            select(ExecutorLease.executor, func.count(QueueItem.id))
            .outerjoin(QueueItem, held)
            .where(ExecutorLease.expires_at > utcnow())
            .group_by(ExecutorLease.executor)
        )
        with self.store.connect() as session:
            return {executor: held for executor, held in session.execute(query)}

    def any_live(self) -> bool:
        """Whether any executor holds a live lease (one that passed its host check)."""
        query = select(ExecutorLease.executor).where(ExecutorLease.expires_at > utcnow()).limit(1)
        with self.store.connect() as session:
            return session.execute(query).first() is not None

    def _renew(self, session: Connection, executor: str, token: str, now: datetime) -> None:
        """Extend the lease (the transaction's first write: on SQLite it takes the lock)."""
        renewed = session.execute(
            update(ExecutorLease)
            .where(ExecutorLease.executor == executor, ExecutorLease.token == token)
            .values(expires_at=now + timedelta(seconds=self.config.lease_ttl_s))
        )
        if renewed.rowcount != 1:
            raise LeaseLost(f"executor {executor} has no lease under this token")

    def _lost(self, session: Connection, where: ColumnElement[bool], now: datetime) -> int:
        """Leased items whose executor is gone: queued again ahead of their user's other work
        (after a backoff), or ended if tried enough times or cancelled meanwhile."""
        rows = session.execute(
            select(QueueItem.id, QueueItem.user, QueueItem.attempts, QueueItem.cancel)
            .where(where, QueueItem.state == LEASED)
            .with_for_update()
        ).all()
        retry = [r for r in rows if not r.cancel and
                 after_lost_lease(r.attempts, self.config.max_attempts) is Fate.RETRY]  # fmt: skip
        for row in retry:
            delay = timedelta(seconds=retry_delay_s(row.attempts, self.config.retry_backoff_s))
            session.execute(
                update(QueueItem)
                .where(QueueItem.id == row.id)
                .values(state=QUEUED, executor=None, token=None,
                        not_before=now + delay)
            )  # fmt: skip
        session.execute(
            update(Evaluation)
            .where(Evaluation.id.in_([r.id for r in retry]), Evaluation.status.not_in(FINAL))
            .values(status=EvalStatus.QUEUED.value)
        )
        ended = [r for r in rows if r not in retry]
        session.execute(delete(QueueItem).where(QueueItem.id.in_([r.id for r in ended])))
        cancelled = [r.id for r in ended if r.cancel]
        end_records(session, cancelled, EvalStatus.CANCELLED, None, now)
        failed = [r.id for r in ended if not r.cancel]
        end_records(session, failed, EvalStatus.ERROR, Reason.EXECUTOR_LOST, now)
        adjust(
            session,
            queued=Counter(r.user for r in retry),
            running={u: -n for u, n in Counter(r.user for r in rows).items()},
        )
        return len(rows)


def end_records(
    session: Connection, eval_ids: list[str], status: EvalStatus, reason: Reason | None,
    now: datetime,
) -> None:  # fmt: skip
    """End records the platform decided (nothing ran to a result), unless already final."""
    if eval_ids:
        session.execute(
            update(Evaluation)
            .where(Evaluation.id.in_(eval_ids), Evaluation.status.not_in(FINAL))
            .values(status=status.value, finished_at=now, **error_fields(reason))
        )
