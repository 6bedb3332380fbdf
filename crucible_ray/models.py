"""The result schema shared by every surface: sandbox, Ray executors, HTTP API, client, batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EvalStatus(StrEnum):
    """Lifecycle of an evaluation. The last five are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # non-zero exit or killed by a signal (OOM included)
    TIMED_OUT = "timed_out"  # the wall clock ran out; everything was killed
    CANCELLED = "cancelled"
    ERROR = "error"  # the platform failed, not the program; `error` says why

    @property
    def is_final(self) -> bool:
        return self not in (EvalStatus.QUEUED, EvalStatus.RUNNING)


def new_eval_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class EvalResult(BaseModel):
    """What happened to one evaluation. Output fields are already capped and valid UTF-8."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_eval_id)
    status: EvalStatus
    language: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = Field(False, description="stdout or stderr exceeded the output cap")
    oom_killed: bool = False
    duration_ms: float | None = Field(None, description="wall time of the program itself")
    runtime: str | None = Field(None, description="container runtime that ran it: runsc or runc")
    backend: str | None = Field(None, description="sandbox backend that ran it: docker or runsc")
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    warnings: list[str] = Field(default_factory=list)
    error: str | None = Field(None, description="why the platform failed (status error only)")
    error_code: str | None = Field(
        None, description="stable reason code of `error` (crucible_ray.reasons.Reason)"
    )
    metadata: dict[str, Any] | None = Field(None, description="the caller's metadata, echoed")


class EvalRequest(BaseModel):
    """One program to evaluate. Size and time limits come from the SandboxPolicy in force."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1, description="the program's source")
    language: str = Field("python", description="python, javascript or go")
    stdin: str = Field("", description="given to the program on its standard input")
    timeout_s: float | None = Field(None, gt=0, description="wall-clock limit in seconds")
