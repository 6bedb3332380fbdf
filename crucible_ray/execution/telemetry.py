"""What the dispatcher and the executors report to the metrics pipeline (crucible_ray.metrics),
kept out of their control flow: one call per event, and a failing metric is logged, never
raised (it must not keep a result from being recorded)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from crucible_ray.metrics import metrics
from crucible_ray.security.rules import alert_of

# A program that meets the sandbox's walls says so on stderr; counted per language, it is the
# cheapest signal of probing (seccomp answers EPERM; the read-only root, EACCES/EROFS).
_DENIAL = re.compile(
    r"PermissionError|Operation not permitted|operation not permitted|EPERM|EACCES|"
    r"Permission denied|permission denied|Read-only file system|read-only file system"
)


log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., None])


def _never_raises(fn: F) -> F:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("recording metric %s failed", fn.__name__)

    return guarded  # type: ignore[return-value]


@_never_raises
def refused(reason: str) -> None:
    metrics().inc("crucible_rejected", reason=reason)


@_never_raises
def admitted() -> None:
    metrics().inc("crucible_admitted")


@_never_raises
def retried() -> None:
    metrics().inc("crucible_retries")


@_never_raises
def store_write_failed() -> None:
    metrics().inc("crucible_store_write_failures")


@_never_raises
def executor_lost() -> None:
    metrics().inc("crucible_executors_lost")


@_never_raises
def finished(result: dict[str, Any], latency_s: float) -> None:
    m, language, status = metrics(), result["language"], result["status"]
    m.inc("crucible_evaluations", status=status, language=language,
          runtime=result.get("runtime") or "none",
          backend=result.get("backend") or "none")  # fmt: skip
    m.observe("crucible_evaluation_latency_seconds", latency_s, language=language)
    if result.get("duration_ms") is not None:
        m.observe("crucible_evaluation_duration_seconds", result["duration_ms"] / 1000,
                  language=language, status=status)  # fmt: skip
    if status == "timed_out":
        m.inc("crucible_timeouts", language=language)
    if result.get("oom_killed"):
        m.inc("crucible_oom_kills", language=language)
    if _DENIAL.search(result.get("stderr") or ""):
        m.inc("crucible_permission_denials", language=language)
    security = result.get("security")
    if security:
        for rule, count in security.get("counts", {}).items():
            m.inc("crucible_security_events", count, rule=rule, alert=alert_of(rule),
                  language=language)  # fmt: skip
        if not security.get("complete", True):
            m.inc("crucible_security_trace_incomplete", language=language)


@_never_raises
def pool(queued: int, running: int, limit: int, executors: Iterable[Any]) -> None:
    """The gauges, set every control-loop tick."""
    m = metrics()
    m.set("crucible_queue_depth", queued)
    m.set("crucible_running", running)
    m.set("crucible_admission_limit", limit)
    states = {"starting": 0, "idle": 0, "busy": 0}
    slots = 0
    for e in executors:
        state = "starting" if not e.ready else "busy" if e.inflight else "idle"
        states[state] += 1
        slots += e.slots if e.ready else 0
    for state, count in states.items():
        m.set("crucible_executors", count, state=state)
    m.set("crucible_slots", slots)


class SandboxMetrics:
    """The executor actor's SandboxObserver: sandbox boots and waits, sandboxes running."""

    def __init__(self, backend: str) -> None:
        self._running = 0
        self._backend = backend

    @_never_raises
    def sandbox_booted(self, language: str, seconds: float) -> None:
        metrics().observe("crucible_sandbox_boot_seconds", seconds, language=language,
                          backend=self._backend)  # fmt: skip

    @_never_raises
    def sandbox_acquired(self, language: str, warm: bool, seconds: float) -> None:
        metrics().observe("crucible_sandbox_wait_seconds", seconds, language=language,
                          warm=str(warm).lower())  # fmt: skip

    @_never_raises
    def running(self, delta: int) -> None:
        self._running += delta
        metrics().set("crucible_sandboxes_running", self._running)
