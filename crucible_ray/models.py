"""The result schema shared by every surface: sandbox, Ray executors, HTTP API, client, batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EvalStatus(StrEnum):
    """Lifecycle of an evaluation. All but the first two are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # non-zero exit or killed by a signal (OOM included)
    COMPILE_ERROR = "compile_error"  # the compile stage failed; `compile` says how
    TIMED_OUT = "timed_out"  # the wall clock ran out; everything was killed
    CANCELLED = "cancelled"
    ERROR = "error"  # the platform failed, not the program; `error` says why

    @property
    def is_final(self) -> bool:
        return self not in (EvalStatus.QUEUED, EvalStatus.RUNNING)


FINAL = [s.value for s in EvalStatus if s.is_final]  # the statuses a record keeps once set


def new_eval_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class CompileResult(BaseModel):
    """The compile stage of a compiled language, apart from the program's run."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "error", "timed_out", "oom_killed"]
    exit_code: int | None = Field(None, description="the compiler's (None if it did not end)")
    output: str = Field("", description="the compiler's stdout and stderr, interleaved")
    truncated: bool = Field(False, description="the output exceeded its cap")
    duration_ms: float = Field(..., description="wall time of the compile stage")


Severity = Literal["low", "medium", "high", "critical"]


class SecurityEvent(BaseModel):
    """One thing the program did that a runtime security rule flags (gVisor trace points,
    ``crucible_ray/security/rules.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(..., description="the rule's id, e.g. network_connect")
    severity: Severity
    alert: str | None = Field(None, description="the alert it feeds, e.g. "
                              "container_escape_attempt")  # fmt: skip
    detail: str = Field("", description="what was done, e.g. connect(1.2.3.4:80)")
    process: str = Field("", description="the process that did it, as the sandbox named it")


class SecuritySummary(BaseModel):
    """What runtime monitoring saw of one sandbox."""

    model_config = ConfigDict(extra="forbid")

    counts: dict[str, int] = Field(default_factory=dict, description="events by rule")
    events: list[SecurityEvent] = Field(
        default_factory=list, description="the first events, in order (at most 20)"
    )
    dropped: int = Field(0, description="trace points gVisor dropped (a flood): not all seen")
    complete: bool = Field(True, description="the sandbox's whole trace stream was read")

    def merged(self, other: SecuritySummary) -> SecuritySummary:
        """Two sandboxes' summaries as one (a judging that took more than one sandbox)."""
        counts = dict(self.counts)
        for rule, count in other.counts.items():
            counts[rule] = counts.get(rule, 0) + count
        return SecuritySummary(counts=counts, events=[*self.events, *other.events][:20],
                               dropped=self.dropped + other.dropped,
                               complete=self.complete and other.complete)  # fmt: skip


class EvalResult(BaseModel):
    """What happened to one evaluation. Output fields are already capped and valid UTF-8."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_eval_id)
    status: EvalStatus
    language: str
    image: str | None = Field(None, description="the sandbox image it ran in (or will)")
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = Field(False, description="stdout or stderr exceeded the output cap")
    oom_killed: bool = False
    duration_ms: float | None = Field(None, description="wall time of the program itself")
    runtime: str | None = Field(None, description="container runtime that ran it: runsc or runc")
    backend: str | None = Field(None, description="sandbox backend that ran it: docker or runsc")
    compile: CompileResult | None = Field(None, description="compiled languages: the compile stage")
    security: SecuritySummary | None = Field(
        None, description="runtime monitoring of the sandbox (None: not monitored)"
    )
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
    language: str = Field(
        "python", description="python, javascript, go, c, cpp, rust or java (GET /api/languages)"
    )
    image: str | None = Field(
        None,
        description="the sandbox image: None for the language's default, or one of its variants"
        " such as python-science (GET /api/languages)",
    )
    stdin: str = Field("", description="given to the program on its standard input")
    timeout_s: float | None = Field(None, gt=0, description="wall-clock limit in seconds")


class CompileStageInfo(BaseModel):
    """How a compiled language compiles, and the limits of that stage alone."""

    command: str = Field(..., description="the compile command (/bin/sh, in /build)")
    memory_mb: int
    pids_limit: int
    cpus: float
    timeout_s: float
    build_mb: int = Field(..., description="size of /build, where the source and artifact live")


class RunStageInfo(BaseModel):
    """The limits a program of this language runs with: exactly the policy's."""

    memory_mb: int
    pids_limit: int
    cpus: float
    timeout_s: float = Field(..., description="the default wall-clock limit")
    max_timeout_s: float = Field(..., description="the most a request may ask for")
    tmp_size_mb: int
    tmp_exec: bool


class LanguageInfo(BaseModel):
    """One sandbox image of a supported language, as ``GET /api/languages`` lists it: each
    language's default image (named after it), then its variants (``python-science``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="the image's name: a request's `image` (or language)")
    language: str = Field(..., description="the language it runs: a request's `language`")
    default: bool = Field(..., description="the image a request of its language gets by default")
    summary: str = Field("", description="what the image holds")
    source_file: str = Field(..., description="the name the program is saved under")
    packages: list[str] = Field(..., description="the Debian packages of its image")
    image: str = Field(..., description="the content-addressed digest of its image")
    versions: dict[str, str] | None = Field(
        None, description="the packages' versions in the built image (when it is on this node)"
    )
    compile: CompileStageInfo | None = Field(None, description="compiled languages only")
    run: RunStageInfo
