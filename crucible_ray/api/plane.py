"""The execution plane as the ingress sees it: one narrow interface, two planes.

``Settings.execution_plane`` picks one (design: docs/design/execution-plane.md):

- ``dispatcher``: one Dispatcher actor admits, queues in memory, runs and holds live results.
  The ingress records first, then submits each evaluation to it.
- ``queue``: the ingress replica itself admits, in one store transaction (the record and the
  sealed request together), so nothing sits between the replica and the store. Executors
  pull through the Dispatch actors; waits are one batched poll of the store per replica
  (``watch.py``). No process sees every evaluation, and an accepted one survives any single
  process's death.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from crucible_ray.api.watch import ResultWatch
from crucible_ray.execution.admitter import QueueAdmitter
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.work import Work
from crucible_ray.models import EvalResult
from crucible_ray.store import EvalStore, NewEvaluation
from crucible_ray.store.leases import CancelOutcome
from crucible_ray.store.queue import DurableQueue, QueueConfig
from crucible_ray.store.sealing import Sealer

DISPATCHER, QUEUE = "dispatcher", "queue"


class ExecutionPlane(Protocol):
    """What the HTTP layer asks of a plane once work is admitted (each plane admits its own
    way: ``accept.py``). Answers are the dispatcher's dict shapes."""

    async def wait(self, user: str, eval_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The result once final, or as it stands after ``timeout_s``; None if unknown."""

    async def admitted(self, eval_id: str) -> bool:
        """Whether the plane holds this evaluation (queued, running or finished)."""

    async def cancel(self, user: str, eval_id: str) -> bool:
        """True if it was cancelled or its cancel was passed to its executor."""

    async def stats(self) -> dict[str, Any]:
        """Queue, capacity and executors, for /healthz and the dashboard."""


class DispatcherPlane:
    def __init__(self, handle: Any) -> None:
        self.handle = handle  # the Dispatcher actor

    async def submit(self, eval_id: str, body: dict[str, Any], context: dict[str, Any],
                     kind: str) -> dict[str, Any]:  # fmt: skip
        return await self.handle.submit.remote(eval_id, body, context, kind)

    async def wait(self, user: str, eval_id: str, timeout_s: float) -> dict[str, Any] | None:
        return await self.handle.wait.remote(eval_id, timeout_s)

    async def admitted(self, eval_id: str) -> bool:
        return await self.handle.wait.remote(eval_id, 0) is not None

    async def cancel(self, user: str, eval_id: str) -> bool:
        answer = await self.handle.cancel.remote(eval_id)
        return bool(answer and answer["cancelled"])

    async def stats(self) -> dict[str, Any]:
        return await self.handle.stats.remote()


class QueuePlane:
    def __init__(self, store: EvalStore, key: bytes, config: DispatcherConfig) -> None:
        self.store = store
        self.config = config
        self.queue = DurableQueue(store, Sealer(key),
                                  QueueConfig(queue_timeout_s=config.queue_timeout_s))  # fmt: skip
        self.admitter = QueueAdmitter(self.queue, config)
        self.watch = ResultWatch(store.final_among)

    def admit(self, user: str, works: list[tuple[NewEvaluation, Work]],
              ended: list[tuple[NewEvaluation, EvalResult]]) -> dict[str, Any]:  # fmt: skip
        """Blocking: run it off the event loop (``QueueAdmitter.admit``)."""
        return self.admitter.admit(user, [(record, work.encode()) for record, work in works],
                                   ended)  # fmt: skip

    async def wait(self, user: str, eval_id: str, timeout_s: float) -> dict[str, Any] | None:
        """None if the store does not answer now: the caller answers with what it knows
        (202 and the id), never a refusal for work that was admitted."""
        if timeout_s > 0:
            await self.watch.wait(eval_id, timeout_s)
        try:
            return await asyncio.to_thread(self._record, user, eval_id)
        except SQLAlchemyError:
            return None

    def _record(self, user: str, eval_id: str) -> dict[str, Any] | None:
        found = self.store.get(user, eval_id) or self.store.get_judgement(user, eval_id)
        return None if found is None else found.model_dump(mode="json")

    async def admitted(self, eval_id: str) -> bool:
        return True  # its record and its queue item were written in one transaction

    async def cancel(self, user: str, eval_id: str) -> bool:
        outcome = await asyncio.to_thread(self.queue.cancel, user, eval_id)
        return outcome is not CancelOutcome.NOT_QUEUED

    async def stats(self) -> dict[str, Any]:
        depth = await asyncio.to_thread(self.queue.depth)
        held = await asyncio.to_thread(self.queue.executors)
        slots = self.config.slots_per_actor
        return {
            "plane": QUEUE,
            "queued": depth.queued,
            "running": depth.running,
            "users": depth.users,
            "admission_limit": self.config.admission_limit,
            "executors": [
                {"actor_id": name, "ready": True, "slots": slots, "busy": busy}
                for name, busy in sorted(held.items())
            ],
            "slots_ready": slots * len(held),
            "counters": {},  # per process on this plane: Prometheus sums them
            "waiting": self.watch.waiting,
        }
