"""The executor's side of the queue plane: claim work for free slots, run it, report results.

An executor pulls instead of being pushed to, so no central process routes evaluations: each
one claims only what its free slots can start, through any Dispatch process. Results are
reported in small batches; a Dispatch process that is down or restarting delays them, never
loses them (they stay here until recorded). If the lease is lost (this executor was presumed
dead), its work has been queued again elsewhere: what runs here is cancelled, its results are
dropped, and the executor registers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from crucible_ray.errors import ImageMissing, SandboxStartFailed, SandboxUnavailable
from crucible_ray.execution.work import Work, platform_result
from crucible_ray.models import EvalStatus
from crucible_ray.reasons import Reason

log = logging.getLogger(__name__)
LEASE_LOST = {"lease_lost": True}  # what Dispatch answers a call under a lost lease


class DispatchPort(Protocol):
    """Dispatch's executor-facing calls (``dispatch.Dispatch``), each awaitable."""

    def register(self, executor: str) -> Awaitable[str]: ...
    def claim(self, executor: str, token: str, slots: int) -> Awaitable[Any]: ...
    def finish(
        self, executor: str, token: str, results: list[dict[str, Any]]
    ) -> Awaitable[Any]: ...
    def heartbeat(self, executor: str, token: str) -> Awaitable[Any]: ...
    def release(self, executor: str, token: str, eval_ids: list[str]) -> Awaitable[Any]: ...
    def retire(self, executor: str, token: str) -> Awaitable[Any]: ...


RunWork = Callable[[str, Work], Awaitable[dict[str, Any]]]


class PullLoop:
    def __init__(self, executor: str, slots: int, port: DispatchPort, run: RunWork,
                 cancel: Callable[[str], Any], heartbeat_s: float = 1.0,
                 idle_poll_s: tuple[float, float] = (0.02, 0.5),
                 report_batch: int = 64, linger_s: float = 0.02) -> None:  # fmt: skip
        self.executor, self.slots, self._port, self._run, self._cancel = (
            executor, slots, port, run, cancel)  # fmt: skip
        self._heartbeat_s, self._idle_poll_s, self._report_batch = (
            heartbeat_s, idle_poll_s, report_batch)  # fmt: skip
        self._token = ""
        self._linger_s = linger_s
        self._linger_until: float | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._results: list[dict[str, Any]] = []
        self._give_back: list[str] = []
        self._changed = asyncio.Event()  # a slot freed, a result to report, or stop
        self._registering = asyncio.Lock()
        self._stopping = False
        self.counters = {"claimed": 0, "reported": 0, "lease_lost": 0, "dispatch_errors": 0}

    def stop(self) -> None:
        """Claim nothing more; return once the running work has been reported."""
        self._stopping = True
        self._changed.set()

    async def run(self) -> None:
        self._token = await self._retrying(lambda: self._port.register(self.executor))
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            await self._exchange_loop()
        finally:
            heartbeats.cancel()
            with contextlib.suppress(Exception):
                await self._port.retire(self.executor, self._token)

    async def _exchange_loop(self) -> None:
        """One call per round: the results so far go with the claim for the slots they
        freed, so a busy executor costs one round trip per batch of evaluations."""
        idle = self._idle_poll_s[0]
        while True:
            self._changed.clear()  # before reading the state: a wake-up after it is kept
            free = 0 if self._stopping else self.slots - len(self._running)
            results, back = self._results[: self._report_batch], list(self._give_back)
            if free <= 0 and not results and not back:
                if self._stopping and not self._running:
                    return  # everything reported
                await self._changed.wait()
                continue
            if await self._lingering(free, len(results)):
                continue
            token = self._token
            try:
                got = await self._port.exchange(self.executor, token, results, back, free)
            except Exception as exc:  # Dispatch down or restarting: kept, sent again shortly
                await self._dispatch_error(exc)
                continue
            if got == LEASE_LOST:
                await self._lease_lost(token)
                continue
            del self._results[: len(results)]
            del self._give_back[: len(back)]
            self.counters["reported"] += len(results)
            self.counters["claimed"] += len(got)
            for eval_id, _attempt, encoded in got:
                self._running[eval_id] = asyncio.create_task(self._one(eval_id, encoded))
            if free > 0 and not got and not results and not back:
                await self._pause(idle)  # nothing queued: ask again later (or on a result)
                idle = min(idle * 2, self._idle_poll_s[1])
            else:
                idle = self._idle_poll_s[0]

    async def _lingering(self, free: int, results: int) -> bool:
        """Wait a moment for more slots to free up, so that one round trip carries several
        results and claims instead of one each (the call, not the item, is what costs). Not
        when half the slots are free, nothing else runs, or we are stopping."""
        if (self._stopping or not self._running or free >= max(1, self.slots // 2)
                or results >= self._report_batch):  # fmt: skip
            self._linger_until = None
            return False
        now = asyncio.get_running_loop().time()
        if self._linger_until is None:
            self._linger_until = now + self._linger_s
        if now >= self._linger_until:
            self._linger_until = None
            return False
        await self._pause(self._linger_until - now)
        return True

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def _one(self, eval_id: str, encoded: bytes) -> None:
        work = Work.decode(encoded)
        try:
            self._results.append(await self._run(eval_id, work))
        except SandboxStartFailed as exc:  # this once: queued again, maybe for another node
            log.warning("evaluation %s: %s", eval_id, exc)
            self._give_back.append(eval_id)
        except ImageMissing as exc:
            log.error("evaluation %s: %s", eval_id, exc)
            self._ended(eval_id, work, Reason.IMAGE_UNAVAILABLE)
        except SandboxUnavailable as exc:  # this node cannot run sandboxes: stop taking work
            log.error("executor %s stops: %s", self.executor, exc)
            self._give_back.append(eval_id)
            self.stop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evaluation %s failed in the executor", eval_id)
            self._ended(eval_id, work, Reason.INTERNAL)
        finally:
            self._running.pop(eval_id, None)
            self._changed.set()

    def _ended(self, eval_id: str, work: Work, reason: Reason) -> None:
        result = platform_result(eval_id, work, EvalStatus.ERROR, reason)
        self._results.append(result.model_dump(mode="json"))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            token = self._token
            try:
                answer = await self._port.heartbeat(self.executor, token)
            except Exception as exc:
                await self._dispatch_error(exc)
                continue
            if answer == LEASE_LOST:
                await self._lease_lost(token)
                continue
            for eval_id in answer:  # cancels asked for by their users
                self._cancel(eval_id)

    async def _lease_lost(self, token: str) -> None:
        """Our work went back to the queue: stop it, drop its results, register again (once,
        however many of our calls found the lease ``token`` gone)."""
        async with self._registering:
            if token == self._token:
                await self._register_again()

    async def _register_again(self) -> None:
        self.counters["lease_lost"] += 1
        log.warning("executor %s lost its lease; its work was queued again", self.executor)
        for eval_id in list(self._running):
            self._cancel(eval_id)
        self._results.clear()
        self._give_back.clear()
        self._token = await self._retrying(lambda: self._port.register(self.executor))

    async def _dispatch_error(self, exc: Exception) -> None:
        self.counters["dispatch_errors"] += 1
        log.warning("dispatch call failed (%s); trying again", type(exc).__name__)
        await asyncio.sleep(0.5)

    async def _retrying(self, call: Callable[[], Awaitable[str]]) -> str:
        while True:
            try:
                return await call()
            except Exception as exc:
                await self._dispatch_error(exc)
