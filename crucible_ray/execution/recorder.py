"""ResultRecorder: the dispatcher's durable side. A final result is written to the EvalStore,
and when the store cannot take it (down, disk full) it is kept and written again with backoff
until it can: an accepted evaluation's result is never dropped for a transient store fault."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from crucible_ray.execution import telemetry
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult
from crucible_ray.store import EvalStore

log = logging.getLogger(__name__)
FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 30.0


class ResultRecorder:
    def __init__(self, store_url: str | None) -> None:
        self._store = EvalStore(store_url) if store_url else None
        self._unrecorded: dict[str, dict[str, Any]] = {}  # id -> final result not yet written

    @property
    def unrecorded(self) -> int:
        return len(self._unrecorded)

    def pending(self, eval_id: str) -> dict[str, Any] | None:
        """A final result still waiting for the store (the dispatcher may have forgotten it)."""
        return self._unrecorded.get(eval_id)

    async def mark_running(self, eval_id: str) -> None:
        if self._store is None:
            return
        try:  # advisory: the final result overwrites it anyway
            await asyncio.to_thread(self._store.mark_running, eval_id)
        except Exception as exc:
            log.warning("could not mark %s running: %s", eval_id, exc)

    async def record(self, result: dict[str, Any], *, judged: bool = False) -> None:
        """Write one final result (``judged``: a JudgeResult), retrying until the store takes
        it."""
        if self._store is None:
            return
        eval_id, delay = result["id"], FIRST_RETRY_S
        self._unrecorded[eval_id] = result
        try:
            while True:
                try:
                    if judged:
                        judgement = JudgeResult.model_validate(result)
                        await asyncio.to_thread(self._store.finish_judgement, judgement)
                    else:
                        evaluation = EvalResult.model_validate(result)
                        await asyncio.to_thread(self._store.finish, evaluation)
                    return
                except Exception as exc:  # store down, disk full, connection lost
                    telemetry.store_write_failed()
                    log.warning("recording %s failed (again in %.1fs): %s", eval_id, delay, exc)
                await asyncio.sleep(delay)
                delay = min(LONGEST_RETRY_S, delay * 2)
        finally:
            self._unrecorded.pop(eval_id, None)
