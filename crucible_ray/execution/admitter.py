"""Admission to the durable queue with the plane's limits: the one path for both kinds of
caller, ingress replicas (HTTP, ``api/plane.QueuePlane``) and the Dispatch actors (Ray drivers:
batch jobs, ``QueueClient``). Answers are the dispatcher's shapes (``execution/client``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.models import EvalResult
from crucible_ray.reasons import Reason
from crucible_ray.store import NewEvaluation
from crucible_ray.store.queue import DurableQueue

EXECUTORS_CHECK_S = 1.0  # how often a process asks the store whether any executor is live


class QueueAdmitter:
    def __init__(self, queue: DurableQueue, config: DispatcherConfig) -> None:
        self.queue = queue
        self.config = config
        # Started just now: executors may still be starting, so none is missing yet.
        self._executor_seen_at = self._checked_at = time.monotonic()

    def admit(
        self, user: str, entries: Sequence[tuple[NewEvaluation, bytes]],
        ended: Sequence[tuple[NewEvaluation, EvalResult]] = (),
    ) -> dict[str, Any]:  # fmt: skip
        """Admit one user's ``(record, encoded work)`` entries, all or none (blocking: run it
        off an event loop). Raises IntegrityError if an id is taken. The per-user limit is
        exact (one conditional upsert); the global one is read first, so processes admitting
        at the same moment can pass it by at most one admission each."""
        if (missing := self._no_executor()) is not None:
            return missing
        depth = self.queue.depth()
        if depth.queued + depth.running + len(entries) > self.config.admission_limit:
            return overloaded(f"{depth.queued + depth.running} evaluations running or queued "
                              f"(limit {self.config.admission_limit})")  # fmt: skip
        limit = self.config.user_admission_limit
        if not self.queue.admit(entries, user_limit=limit, ended=ended):
            return overloaded(f"your evaluations running or queued would pass {limit} per user")
        return {"accepted": True}

    def _no_executor(self) -> dict[str, Any] | None:
        """Fail secure, as on the dispatcher plane: refused (``no_executor``) when no executor
        has held a live lease for ``unavailable_after_s``, rather than admitting work that
        would wait out its queue time. An executor that fails its host check never takes a
        lease. With ``min_actors`` 0 an idle pool has none by design: nothing is refused."""
        now = time.monotonic()
        if now - self._checked_at >= EXECUTORS_CHECK_S:
            self._checked_at = now
            if self.queue.any_live():
                self._executor_seen_at = now
        idle_by_design = self.config.min_actors == 0
        if idle_by_design or now - self._executor_seen_at <= self.config.unavailable_after_s:
            return None
        message = f"{Reason.NO_EXECUTOR.sentence}: none has been live for a while"
        return refusal(Reason.NO_EXECUTOR.value, message)


def refusal(reason: str, message: str, *, field: str | None = None,
            retry_after_s: float | None = None) -> dict[str, Any]:  # fmt: skip
    return {"accepted": False, "reason": reason, "message": message, "field": field,
            "retry_after_s": retry_after_s}  # fmt: skip


def overloaded(message: str) -> dict[str, Any]:
    return refusal(Reason.OVERLOADED.value, message, retry_after_s=1.0)
