"""ExecutorActor: a Ray actor on an executor node that runs evaluations in local sandboxes.

Each actor owns ``slots`` concurrent sandbox slots (reserved as the ``sandbox_slots`` Ray
resource, so Ray never oversubscribes a node) and keeps one warm sandbox per slot. Starting
it sweeps containers left on this node by dead actors.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import ray

from crucible_ray.errors import CrucibleError
from crucible_ray.execution.puller import PullLoop
from crucible_ray.execution.telemetry import SandboxMetrics
from crucible_ray.execution.work import JUDGE, Work
from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.judging import judge
from crucible_ray.judge.models import JudgeRequest, JudgeResult
from crucible_ray.languages import get_image
from crucible_ray.models import EvalRequest, EvalResult, EvalStatus, utcnow
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.registry import backend_for
from crucible_ray.sandbox.runner import SandboxRunner
from crucible_ray.topology import NAMESPACE

log = logging.getLogger(__name__)
SWEEP_INTERVAL_S = 10.0
T = TypeVar("T")


class ExecutorActor:
    def __init__(
        self,
        slots: int,
        policy: SandboxPolicy | None = None,
        warm: dict[str, int] | None = None,
        boot_workers: int = 1,
        state_dir: Path | None = None,
    ) -> None:
        self.slots = slots
        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.node_labels = context.get_node_labels()
        policy = policy or SandboxPolicy()
        backend = backend_for(policy)  # resolved here so that metrics name it, never "auto"
        self._telemetry = SandboxMetrics(backend.name)
        self._runner = SandboxRunner(
            policy,
            backend=backend,
            state_dir=state_dir,
            warm=warm or {"python": slots},
            boot_workers=boot_workers,
            observer=self._telemetry,
        ).start()  # fails secure: no safe sandboxes, no actor
        self._threads = ThreadPoolExecutor(max_workers=slots + 1, thread_name_prefix="slot")
        self._running = 0
        self._precancelled: set[str] = set()  # cancelled before their run() arrived
        self._puller: PullLoop | None = None
        self._pulling: asyncio.Task[None] | None = None
        # Orphans can appear after start: a dying actor's engine call may still be completing.
        threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True).start()

    async def run(self, eval_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run one evaluation; always returns an EvalResult (as a JSON-ready dict)."""
        parsed = EvalRequest.model_validate(request)
        if eval_id in self._precancelled:
            self._precancelled.discard(eval_id)
            cancelled = EvalResult(id=eval_id, status=EvalStatus.CANCELLED,
                                   language=parsed.language, image=parsed.image,
                                   finished_at=utcnow())  # fmt: skip
            return cancelled.model_dump(mode="json")
        result = await self._in_slot(self._runner.run, parsed, eval_id)
        return result.model_dump(mode="json")

    async def judge(self, judge_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Judge one submission; always returns a JudgeResult (as a JSON-ready dict)."""
        parsed = JudgeRequest.model_validate(request)
        if judge_id in self._precancelled:
            self._precancelled.discard(judge_id)
            spec = get_image(parsed.language, parsed.image)
            cancelled = JudgeResult(id=judge_id, status=EvalStatus.CANCELLED,
                                    language=parsed.language, image=spec.name,
                                    compare_version=COMPARE_VERSION,
                                    driver_version=DRIVER_VERSION, total=len(parsed.tests),
                                    finished_at=utcnow())  # fmt: skip
            return cancelled.model_dump(mode="json")
        judged = await self._in_slot(judge, self._runner, parsed, judge_id)
        return judged.model_dump(mode="json")

    async def _in_slot(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` in one of the slots' threads, counted as running meanwhile."""
        self._running += 1
        self._telemetry.running(+1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        finally:
            self._running -= 1
            self._telemetry.running(-1)

    async def cancel(self, eval_id: str) -> bool:
        if self._runner.cancel(eval_id):
            return True
        if len(self._precancelled) > 10_000:  # ids whose run finished before the cancel came
            self._precancelled.clear()
        self._precancelled.add(eval_id)
        return False

    async def info(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "node_labels": self.node_labels,
            "slots": self.slots,
            "running": self._running,
            "warm_ready": self._runner.warm_ready(),
            "owner": self._runner.owner,
        }

    async def sweep(self) -> int:
        """Remove sandboxes of dead owners on this node (e.g. after another actor died)."""
        return await asyncio.to_thread(self._sweep)

    def _sweep(self) -> int:
        return self._runner.backend.sweep(self._runner.work_dir.parent)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_INTERVAL_S)
            try:
                self._sweep()
            except CrucibleError as exc:
                log.warning("orphan sweep failed: %s", exc)

    # the queue plane: this executor pulls its work (execution/puller.py) -------------------

    async def pull(self, dispatch_names: list[str]) -> dict[str, int]:
        """Claim, run and report work through the named Dispatch actors until
        :meth:`stop_pulling`; returns its counters. A caller awaiting this learns at once if
        the actor dies. Called again while it pulls, it waits for the same loop."""
        if self._pulling is None or self._pulling.done():
            executor_id = ray.get_runtime_context().get_actor_id()
            port = RayDispatchPort(dispatch_names, start=hash(executor_id))
            self._puller = PullLoop(executor_id, self.slots, port, self._execute,
                                    self._runner.cancel)  # fmt: skip
            self._pulling = asyncio.get_running_loop().create_task(self._puller.run())
        await asyncio.shield(self._pulling)
        assert self._puller is not None
        return self._puller.counters

    async def stop_pulling(self) -> None:
        if self._puller is not None:
            self._puller.stop()

    async def _execute(self, eval_id: str, work: Work) -> dict[str, Any]:
        if work.kind == JUDGE:
            request = JudgeRequest.model_validate(work.request)
            judged = await self._in_slot(judge, self._runner, request, eval_id)
            return judged.model_dump(mode="json")
        result = await self._in_slot(self._runner.run, EvalRequest.model_validate(work.request),
                                     eval_id)  # fmt: skip
        return result.model_dump(mode="json")

    async def shutdown(self) -> None:
        """Graceful stop before the actor is killed: warm sandboxes are destroyed."""
        await asyncio.to_thread(self._runner.close)


class RayDispatchPort:
    """The Dispatch actors, by name: each call goes to this executor's usual one and moves on
    to the next when that one is down (they are interchangeable: the store holds the state)."""

    def __init__(self, names: list[str], start: int = 0) -> None:
        self._names, self._index = names, start % len(names)
        self._handles: dict[str, Any] = {}

    async def _call(self, method: str, *args: Any) -> Any:
        name = self._names[self._index]
        try:
            if name not in self._handles:
                self._handles[name] = ray.get_actor(name, namespace=NAMESPACE)
            return await getattr(self._handles[name], method).remote(*args)
        except Exception:
            self._handles.pop(name, None)
            self._index = (self._index + 1) % len(self._names)
            raise

    def register(self, executor: str) -> Awaitable[str]:
        return self._call("register", executor)

    def exchange(self, executor: str, token: str, results: list[dict], give_back: list[str],
                 slots: int) -> Awaitable[Any]:  # fmt: skip
        return self._call("exchange", executor, token, results, give_back, slots)

    def heartbeat(self, executor: str, token: str) -> Awaitable[Any]:
        return self._call("heartbeat", executor, token)

    def retire(self, executor: str, token: str) -> Awaitable[Any]:
        return self._call("retire", executor, token)
