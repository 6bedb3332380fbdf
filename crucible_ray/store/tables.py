"""The database schema. The submitted code is never stored, only its SHA-256."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Evaluation(Base):
    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    batch_index: Mapped[int | None] = mapped_column(Integer)  # position in its batch
    status: Mapped[str] = mapped_column(String(16), index=True)
    language: Mapped[str] = mapped_column(String(32))
    image: Mapped[str | None] = mapped_column(String(64))  # the sandbox image (None: before it)
    code_sha256: Mapped[str] = mapped_column(String(64))
    # The digest of the whole request that created it (an Idempotency-Key replay must match).
    request_sha256: Mapped[str | None] = mapped_column(String(64))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    runtime: Mapped[str | None] = mapped_column(String(16))
    backend: Mapped[str | None] = mapped_column(String(32))  # e.g. null-benchmark-only
    compile: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # models.CompileResult
    security: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # models.SecuritySummary
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    # None: an evaluation; "judge": a judged submission, its verdict and tests in judgement
    # (crucible_ray.judge.models.JudgeResult's own fields).
    kind: Mapped[str | None] = mapped_column(String(8))
    judgement: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_evaluations_user_created", "user", "created_at"),)


class StoredTestSet(Base):
    """A user's test set (crucible_ray.judge.testsets), named by its content's SHA-256: the
    same content stored by two users is two rows, each erased with its owner's data."""

    __tablename__ = "testsets"

    user: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[str] = mapped_column(String(71), primary_key=True)  # sha256:<64 hex>
    tests: Mapped[bytes] = mapped_column(LargeBinary)  # the canonical JSON that id hashes
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class QueueItem(Base):
    """An accepted evaluation until its result is final (``store/queue.py``): waiting, or
    leased to one executor. Deleted, sealed request and all, when the result is recorded."""

    __tablename__ = "queue_items"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(8))  # "queued" | "leased"
    sealed: Mapped[bytes] = mapped_column(LargeBinary)  # sealing.Sealer, bound to id
    size: Mapped[int] = mapped_column(Integer)  # bytes of the request before sealing
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # first in, first out
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # retry backoff
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # queue_timeout
    executor: Mapped[str | None] = mapped_column(String(64))
    token: Mapped[str | None] = mapped_column(String(32))  # the executor's lease it is under
    cancel: Mapped[bool] = mapped_column(Boolean, default=False)  # asked while it runs

    __table_args__ = (
        Index("ix_queue_items_claim", "user", "state", "queued_at"),
        Index("ix_queue_items_lease", "executor", "token"),
    )


class QueueUser(Base):
    """Per-user counters of the queue, kept in the same transactions as the items they count:
    a claim plans from these few rows instead of scanning the queue, and a user's admission
    limit is one conditional update."""

    __tablename__ = "queue_users"

    user: Mapped[str] = mapped_column(String(128), primary_key=True)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    running: Mapped[int] = mapped_column(Integer, default=0)
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateBucket(Base):
    """A user's token bucket for submissions (``store/rate_limits.py``): shared by every
    ingress replica without a process that sees every request."""

    __tablename__ = "rate_buckets"

    user: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch of the last change


class ExecutorLease(Base):
    """One executor's lease on everything it has claimed: renewed by its heartbeats and
    results; when it lapses, its work is queued again. A new token per registration fences a
    restarted executor's stale results out."""

    __tablename__ = "executor_leases"

    executor: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
