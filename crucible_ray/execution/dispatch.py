"""Dispatch: the queue plane's stateless front to the durable queue (design:
docs/design/execution-plane.md).

Callers admit work through it and read results; executors register, claim, heartbeat and
report through it. It holds no evaluation in memory: every call is a transaction on the store,
so any number of Dispatch processes serve the same cluster, one may die at any moment without
losing anything, and none of them sees every evaluation. Executor nodes reach the queue only
through it: they hold neither the database's address and password nor the sealing key.

Methods are synchronous: Ray runs them on the actor's threads (``max_concurrency``), one
database connection each from the store's pool.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from crucible_ray.audit import audit_admission, audit_evaluation, audit_to_file
from crucible_ray.errors import InvalidRequest, LeaseLost
from crucible_ray.execution import telemetry
from crucible_ray.execution.admitter import QueueAdmitter, refusal
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.work import JUDGE, validate_work
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.store import EvalStore, NewEvaluation
from crucible_ray.store.leases import CancelOutcome
from crucible_ray.store.queue import DurableQueue, Exchanged, QueueConfig
from crucible_ray.store.sealing import Sealer

log = logging.getLogger(__name__)
LEASE_LOST = {"lease_lost": True}


class Dispatch:
    def __init__(self, config: dict[str, Any], queue: dict[str, Any] | None = None) -> None:
        from pathlib import Path

        from crucible_ray.settings import load_settings

        self.config = DispatcherConfig.model_validate(config)
        if self.config.store_state_dir is None:
            raise ValueError("the queue plane needs the service's store (store_state_dir)")
        settings = load_settings({"state_dir": self.config.store_state_dir})
        self.store = EvalStore(self.config.store_url() or settings.db_url)
        queue_config = QueueConfig(queue_timeout_s=self.config.queue_timeout_s, **(queue or {}))
        self.queue = DurableQueue(self.store, Sealer(settings.queue_key_bytes), queue_config)
        self.admitter = QueueAdmitter(self.queue, self.config)
        audit_to_file(Path(self.config.store_state_dir))

    # callers ---------------------------------------------------------------------------------

    def admit(self, user: str, items: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
        """Admit ``(eval_id, kind, request)`` items of one user, all or none (a refusal says
        why in the dispatcher's shape: ``execution/client.raise_for_refusal``)."""
        try:
            works = [(eval_id, validate_work(kind, request, self.config.policy))
                     for eval_id, kind, request in items]  # fmt: skip
        except InvalidRequest as exc:
            telemetry.refused("invalid")
            return refusal("invalid", str(exc), field=exc.field)
        if items and self.store.code_sha256(items[0][0]) is not None:  # a resend, most likely
            return self._resent(user, [eval_id for eval_id, _, _ in items])
        entries = [(NewEvaluation(id=eval_id, user=user, code=_code(work.request),
                                  language=work.language, image=work.image,
                                  kind=JUDGE if work.kind == JUDGE else None), work.encode())
                   for eval_id, work in works]  # fmt: skip
        try:
            answer = self.admitter.admit(user, entries)
        except IntegrityError:  # an id taken: a resend of an admission, or a clash
            return self._resent(user, [eval_id for eval_id, _, _ in items])
        if not answer["accepted"]:
            telemetry.refused(answer["reason"])
            return answer
        for record, _ in entries:  # sent from a Ray driver: no client address
            telemetry.admitted()
            audit_admission(record.id, user, None, record.code_sha256, record.language)
        return {"accepted": True}

    def _resent(self, user: str, eval_ids: list[str]) -> dict[str, Any]:
        """Idempotent by id: the same ids admitted before for this user are accepted again
        (nothing new is recorded); ids of someone else's or a partial overlap are refused."""
        if all(self.result(user, eval_id) is not None for eval_id in eval_ids):
            return {"accepted": True, "duplicate": True}
        return refusal("invalid", "an evaluation id in this admission is already taken",
                       field="id")  # fmt: skip

    def result(self, user: str, eval_id: str) -> dict[str, Any] | None:
        """The record as it stands (queued, running or final); None if not the user's."""
        found: EvalResult | JudgeResult | None = self.store.get(user, eval_id)
        if found is None:
            found = self.store.get_judgement(user, eval_id)
        return None if found is None else found.model_dump(mode="json")

    def finished(self, user: str, eval_ids: list[str]) -> list[dict[str, Any]]:
        """The user's final results among ``eval_ids`` (one query)."""
        return [found.model_dump(mode="json") for found in self.store.final_results(user, eval_ids)]

    def limits(self) -> dict[str, int]:
        return {"admission_limit": self.config.admission_limit,
                "user_admission_limit": self.config.user_admission_limit}  # fmt: skip

    def cancel(self, user: str, eval_id: str) -> str:
        return self.queue.cancel(user, eval_id).value

    def depth(self) -> dict[str, int]:
        depth = self.queue.depth()
        return {"queued": depth.queued, "running": depth.running, "users": depth.users}

    # executors -------------------------------------------------------------------------------

    def register(self, executor: str) -> str:
        return self.queue.register(executor)

    def exchange(self, executor: str, token: str, results: list[dict[str, Any]],
                 give_back: list[str], slots: int) -> Any:  # fmt: skip
        """An executor's round trip (``DurableQueue.exchange``): records its results, takes
        back what it could not run, and leases it up to ``slots`` more. Returns
        ``[(eval_id, attempt, encoded work)]`` claimed, or LEASE_LOST (nothing changed)."""
        parsed = [JudgeResult.model_validate(r) if "verdict" in r else EvalResult.model_validate(r)
                  for r in results]  # fmt: skip
        try:
            try:
                answer = self.queue.exchange(executor, token, parsed, give_back, slots)
            except (DataError, IntegrityError):  # a result the store refuses: not the others
                recorded = self._record_one_by_one(executor, token, parsed)
                answer = self.queue.exchange(executor, token, (), give_back, slots)
                answer = Exchanged({**recorded, **answer.recorded}, answer.claimed)
        except LeaseLost:
            return LEASE_LOST
        for result, raw in zip(parsed, results, strict=True):
            if result.id in answer.recorded:  # the run's own time: admission is not known here
                ended = result.finished_at or result.created_at
                telemetry.finished(raw, (ended - result.created_at).total_seconds())
                audit_evaluation(raw, {"user": answer.recorded[result.id]})
        return [(c.id, c.attempt, c.request) for c in answer.claimed]

    def _record_one_by_one(self, executor: str, token: str,
                           results: list[EvalResult | JudgeResult]) -> dict[str, str]:  # fmt: skip
        """Each result alone; one the store still refuses ends as the platform's error, so
        it cannot block the executor's other results (or its claims) forever."""
        recorded: dict[str, str] = {}
        for result in results:
            try:
                recorded |= self.queue.finish(executor, token, [result])
            except (DataError, IntegrityError):
                log.exception("the store refused the result of %s", result.id)
                failed = result.model_copy(update={
                    "status": EvalStatus.ERROR, "runtime": None, "backend": None,
                    **error_fields(Reason.INTERNAL), **_cleared(result)})  # fmt: skip
                recorded |= self.queue.finish(executor, token, [failed])
        return recorded

    def heartbeat(self, executor: str, token: str) -> Any:
        """Renews the lease; the ids to cancel, or LEASE_LOST."""
        try:
            return self.queue.heartbeat(executor, token)
        except LeaseLost:
            return LEASE_LOST

    def retire(self, executor: str, token: str) -> None:
        self.queue.retire(executor, token)

    def expire(self) -> int:
        return self.queue.expire()


def _cleared(result: EvalResult | JudgeResult) -> dict[str, Any]:
    if isinstance(result, JudgeResult):
        return {"verdict": "IE", "score": None, "tests": [], "security": None}
    return {"stdout": "", "stderr": "", "security": None, "exit_code": None}


def _code(request: dict[str, Any]) -> str:
    return str(request.get("code", ""))


__all__ = ["LEASE_LOST", "CancelOutcome", "Dispatch"]
