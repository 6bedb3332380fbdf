"""EvalStore: every accepted evaluation is recorded before it is acknowledged, and its final
result replaces the record exactly once (the first final result wins)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, create_engine, delete, func, select, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import (
    FINAL,
    CompileResult,
    EvalResult,
    EvalStatus,
    SecuritySummary,
    utcnow,
)
from crucible_ray.store.files import private_sqlite
from crucible_ray.store.judgements import JUDGE, JudgementRecords, judgement_of
from crucible_ray.store.schema import Sessions, aware, create_schema
from crucible_ray.store.tables import Evaluation, QueueItem, QueueUser, RateBucket
from crucible_ray.store.testsets import TestSetRecords

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5  # a database that does not answer: a 503 in seconds, not a hung request
POOL_TIMEOUT_S = 10
PAGE_ROWS = 200  # rows read per short session when streaming a user's or a batch's results
# Warnings are recorded at acceptance (static analysis); a result does not replace them.
RATE_BUCKET_IDLE_S = 3600.0
_RESULT_FIELDS = (
    "status",
    "exit_code",
    "stdout",
    "stderr",
    "truncated",
    "oom_killed",
    "duration_ms",
    "runtime",
    "backend",
    "image",
    "finished_at",
    "error",
    "error_code",
)


@dataclass
class NewEvaluation:
    id: str
    user: str
    code: str
    language: str
    image: str | None = None
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    batch_id: str | None = None
    batch_index: int | None = None
    request_sha256: str | None = None
    kind: str | None = None  # None: an evaluation; "judge": a judged submission

    @property
    def code_sha256(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()

    def row(self, now: datetime) -> Evaluation:
        return Evaluation(
            id=self.id,
            user=self.user,
            batch_id=self.batch_id,
            batch_index=self.batch_index,
            status=EvalStatus.QUEUED.value,
            language=self.language,
            image=self.image,
            created_at=now,
            warnings=list(self.warnings),
            code_sha256=self.code_sha256,
            request_sha256=self.request_sha256,
            metadata_=self.metadata,
            stdout="",
            stderr="",
            truncated=False,
            oom_killed=False,
            kind=self.kind,
        )


class EvalStore(JudgementRecords, TestSetRecords):
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": POOL_TIMEOUT_S}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        elif url.startswith("postgresql"):  # an unreachable server fails fast, never hangs
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        self.engine: Engine = create_engine(url, **kwargs)
        self._session = Sessions(sessionmaker(self.engine, expire_on_commit=False), self._prepare)
        self._prepared = False
        self._prepare_lock = threading.Lock()
        try:
            self._prepare()
        except SQLAlchemyError as exc:  # down now: every call tries again until it is back
            log.warning("result store unavailable at start (%s); retrying on use", exc)

    def _prepare(self) -> None:
        """The schema, once: a store made while its database is down works once it is back."""
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            if self.url.startswith("sqlite"):
                private_sqlite(self.url)  # before SQLite creates the files
            create_schema(self.engine)
            self._prepared = True

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction on a plain connection (hot paths skip the ORM's bookkeeping)."""
        self._prepare()
        return self.engine.begin()

    def connect(self) -> AbstractContextManager[Connection]:
        """A plain connection for reads."""
        self._prepare()
        return self.engine.connect()

    # writes ----------------------------------------------------------------------------------

    def add(self, evaluations: list[NewEvaluation]) -> None:
        """Record accepted evaluations in one transaction (all or none)."""
        now = utcnow()
        with self._session.begin() as session:
            session.add_all(e.row(now) for e in evaluations)

    def finish(self, result: EvalResult) -> bool:
        """Record a final result unless one is already recorded. Returns whether it was."""
        with self._session.begin() as session:
            updated = session.execute(
                update(Evaluation)
                .where(Evaluation.id == result.id, Evaluation.status.not_in(FINAL))
                .values(**result_values(result))
            )
        return updated.rowcount == 1

    def mark_running(self, eval_id: str) -> None:
        with self._session.begin() as session:
            session.execute(
                update(Evaluation)
                .where(Evaluation.id == eval_id, Evaluation.status == EvalStatus.QUEUED.value)
                .values(status=EvalStatus.RUNNING.value)
            )

    def delete_user_evals(self, user: str, eval_ids: list[str]) -> None:
        """Forget evaluations that were recorded but then not admitted."""
        with self._session.begin() as session:
            session.execute(
                delete(Evaluation).where(Evaluation.id.in_(eval_ids), Evaluation.user == user)
            )

    def delete_user(self, user: str) -> int:
        """Erase everything of the user's: results and test sets (how many were erased)."""
        with self._session.begin() as session:
            results = session.execute(delete(Evaluation).where(Evaluation.user == user)).rowcount
            # Queued requests (code) go too; an executor running one has its result dropped.
            session.execute(delete(QueueItem).where(QueueItem.user == user))
            session.execute(delete(QueueUser).where(QueueUser.user == user))
            return results + self._delete_user_testsets(session, user)

    def purge(self, older_than: timedelta) -> int:
        """Results created, and test sets last used, before ``older_than`` ago; and rate-limit
        buckets untouched for an hour (full again: dropping them changes nothing). Buckets are
        not erased with a user's data, or erasing would reset the user's rate limit."""
        cutoff = utcnow() - older_than
        with self._session.begin() as session:
            idle = time.time() - RATE_BUCKET_IDLE_S
            session.execute(delete(RateBucket).where(RateBucket.at < idle))
            results = session.execute(
                delete(Evaluation).where(Evaluation.created_at < cutoff)
            ).rowcount
            return results + self._purge_testsets(session, cutoff)

    # reads -----------------------------------------------------------------------------------

    def get(self, user: str, eval_id: str) -> EvalResult | None:
        """The caller's own evaluation; another user's is indistinguishable from a missing one
        (and so is a judged submission: :meth:`get_judgement`)."""
        with self._session() as session:
            row = session.get(Evaluation, eval_id)
            mine = row is not None and row.user == user and row.kind is None
            return _result(row) if mine else None

    def code_sha256(self, eval_id: str) -> str | None:
        """The digest of the code an evaluation was submitted with (to match a replay)."""
        with self._session() as session:
            return session.scalar(select(Evaluation.code_sha256).where(Evaluation.id == eval_id))

    def for_user(self, user: str) -> Iterator[EvalResult | JudgeResult]:
        """The user's results (evaluations and judgings), oldest first, a page at a time
        (keyset on created_at, id)."""
        after: tuple[datetime, str] | None = None
        while True:
            query = select(Evaluation).where(Evaluation.user == user)
            if after is not None:
                query = query.where(tuple_(Evaluation.created_at, Evaluation.id) > tuple_(*after))
            rows = self._page(query.order_by(Evaluation.created_at, Evaluation.id))
            yield from (_any_result(row) for row in rows)
            if len(rows) < PAGE_ROWS:
                return
            after = (rows[-1].created_at, rows[-1].id)

    def batch(self, user: str, batch_id: str) -> Iterator[EvalResult | JudgeResult]:
        """A batch's results in submission order, a page at a time (keyset on batch_index);
        a judge batch's are JudgeResults."""
        after = -1
        while True:
            query = select(Evaluation).where(
                Evaluation.user == user,
                Evaluation.batch_id == batch_id,
                Evaluation.batch_index > after,
            )
            rows = self._page(query.order_by(Evaluation.batch_index))
            yield from (_any_result(row) for row in rows)
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1].batch_index  # type: ignore[assignment]

    def _page(self, query: Select) -> list[Evaluation]:
        """One page in a session of its own: a slow reader of a long stream holds no database
        connection between pages, and never more than a page in memory."""
        with self._session() as session:
            return list(session.scalars(query.limit(PAGE_ROWS)))

    def batch_request(self, user: str, batch_id: str) -> tuple[list[str], str | None]:
        """A batch's ids in order, and the digest of the request that created it."""
        with self._session() as session:
            rows = session.execute(
                select(Evaluation.id, Evaluation.request_sha256)
                .where(Evaluation.user == user, Evaluation.batch_id == batch_id)
                .order_by(Evaluation.batch_index)
            ).all()
        return [row.id for row in rows], (rows[0].request_sha256 if rows else None)

    def batch_counts(self, user: str, batch_id: str) -> Counter[str]:
        with self._session() as session:
            rows = session.execute(
                select(Evaluation.status, func.count())
                .where(Evaluation.user == user, Evaluation.batch_id == batch_id)
                .group_by(Evaluation.status)
            )
            return Counter({status: count for status, count in rows})

    def final_among(self, eval_ids: Sequence[str]) -> set[str]:
        """Which of these records are final (one query: the waits of a whole replica)."""
        if not eval_ids:
            return set()
        query = select(Evaluation.id).where(
            Evaluation.id.in_(list(eval_ids)), Evaluation.status.in_(FINAL)
        )
        with self.connect() as conn:
            return set(conn.scalars(query))

    def final_results(self, user: str, eval_ids: Sequence[str]) -> list[EvalResult | JudgeResult]:
        """The user's final results among these ids, evaluations and judgings (one query: a
        batch driver's whole window per poll)."""
        if not eval_ids:
            return []
        mine = (Evaluation.id.in_(list(eval_ids)), Evaluation.user == user)
        query = select(Evaluation).where(*mine, Evaluation.status.in_(FINAL))
        with self._session() as session:
            return [_any_result(row) for row in session.scalars(query)]

    def unfinished(self, limit: int = 1000, older_than: timedelta | None = None) -> list[str]:
        query = select(Evaluation.id).where(Evaluation.status.not_in(FINAL))
        if older_than is not None:
            query = query.where(Evaluation.created_at < utcnow() - older_than)
        with self._session() as session:
            return list(session.scalars(query.limit(limit)))

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")


def result_values(result: EvalResult) -> dict[str, Any]:
    """The columns a final result sets on its record."""
    values = {name: getattr(result, name) for name in _RESULT_FIELDS}
    values["status"] = result.status.value
    values["finished_at"] = result.finished_at or utcnow()
    values["compile"] = result.compile.model_dump() if result.compile else None
    values["security"] = result.security.model_dump() if result.security else None
    return values


def _any_result(row: Evaluation) -> EvalResult | JudgeResult:
    return judgement_of(row) if row.kind == JUDGE else _result(row)


def _result(row: Evaluation) -> EvalResult:
    return EvalResult(
        id=row.id,
        status=EvalStatus(row.status),
        language=row.language,
        image=row.image,
        exit_code=row.exit_code,
        stdout=row.stdout,
        stderr=row.stderr,
        truncated=row.truncated,
        oom_killed=row.oom_killed,
        duration_ms=row.duration_ms,
        runtime=row.runtime,
        backend=row.backend,
        compile=CompileResult.model_validate(row.compile) if row.compile else None,
        security=SecuritySummary.model_validate(row.security) if row.security else None,
        created_at=aware(row.created_at),
        finished_at=aware(row.finished_at),
        warnings=list(row.warnings or []),
        error=row.error,
        error_code=row.error_code,
        metadata=row.metadata_,
    )
