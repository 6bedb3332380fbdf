"""The executor's pull loop alone (pure asyncio): an in-memory stand-in for Dispatch checks
its bookkeeping. The real loop against real Dispatch actors, a real store and real sandboxes
is tests/execution/test_queue_plane.py."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from crucible_ray.errors import ImageMissing, SandboxStartFailed
from crucible_ray.execution.puller import LEASE_LOST, PullLoop
from crucible_ray.execution.work import EVAL, Work

WORK = Work(EVAL, {"code": "print(1)"}, "python", "python", 5.0).encode()


class MemoryDispatch:
    """Leases and results in memory, with faults on request."""

    def __init__(self, count: int) -> None:
        self.queue = deque(f"e{i}" for i in range(count))
        self.token, self.tokens = "", 0
        self.leased: dict[str, str] = {}  # eval_id: token
        self.recorded: dict[str, dict] = {}
        self.calls = 0
        self.failures = 0  # the next calls that raise
        self.revoke_after: int | None = None  # the lease lapses after this many exchanges
        self.given_back: list[str] = []
        self.retired = False

    async def register(self, executor: str) -> str:
        self.tokens += 1
        self.token = f"t{self.tokens}"
        return self.token

    async def exchange(self, executor, token, results, give_back, slots) -> Any:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("dispatch down")
        if self.revoke_after is not None and self.calls > self.revoke_after:
            self.revoke_after = None  # presumed dead: its leased work goes back to the queue
            self.queue.extendleft(eval_id for eval_id, t in self.leased.items() if t == token)
            self.leased = {e: t for e, t in self.leased.items() if t != token}
            self.token = "revoked"
        if token != self.token:
            return LEASE_LOST
        for result in results:
            if self.leased.pop(result["id"], None) == token:
                assert result["id"] not in self.recorded, "recorded twice"
                self.recorded[result["id"]] = result
        for eval_id in give_back:
            self.given_back.append(eval_id)
            self.leased.pop(eval_id, None)
        claimed = []
        while self.queue and len(claimed) < slots:
            eval_id = self.queue.popleft()
            self.leased[eval_id] = token
            claimed.append((eval_id, 1, WORK))
        return claimed

    async def heartbeat(self, executor, token) -> Any:
        return LEASE_LOST if token != self.token else []

    async def retire(self, executor, token) -> None:
        self.retired = True


async def ok(eval_id: str, work: Work) -> dict[str, Any]:
    await asyncio.sleep(0.001)
    return {"id": eval_id, "status": "succeeded"}


def pull(port: MemoryDispatch, run=ok, slots: int = 4) -> PullLoop:
    loop = PullLoop("ex", slots, port, run, cancel=lambda _id: None, heartbeat_s=0.05,
                    idle_poll_s=(0.01, 0.02))  # fmt: skip

    async def until_drained() -> None:
        task = asyncio.create_task(loop.run())
        while port.queue or port.leased:
            await asyncio.sleep(0.01)
        loop.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(asyncio.wait_for(until_drained(), 20))
    return loop


def test_every_item_runs_and_is_reported_once_in_batches():
    port = MemoryDispatch(40)
    loop = pull(port)
    assert sorted(port.recorded) == sorted(f"e{i}" for i in range(40))
    assert port.calls < 40  # several results and claims per round trip
    assert port.retired and loop.counters["reported"] == 40


def test_results_survive_a_dispatch_outage():
    port = MemoryDispatch(8)
    port.failures = 3
    loop = pull(port)
    assert len(port.recorded) == 8 and loop.counters["dispatch_errors"] == 3


def test_a_lost_lease_drops_its_results_and_registers_again():
    port = MemoryDispatch(12)
    port.revoke_after = 2
    loop = pull(port)
    assert sorted(port.recorded) == sorted(f"e{i}" for i in range(12))  # each once
    assert loop.counters["lease_lost"] == 1 and port.tokens == 2


@pytest.mark.parametrize("fault", [SandboxStartFailed, ImageMissing])
def test_what_the_executor_cannot_run(fault):
    port = MemoryDispatch(3)
    failed = set()

    async def run(eval_id: str, work: Work) -> dict[str, Any]:
        if eval_id == "e1" and eval_id not in failed:
            failed.add(eval_id)
            raise fault("no sandbox for you")
        return await ok(eval_id, work)

    if fault is SandboxStartFailed:  # given back to be run again (here: by the same executor)
        loop = pull(port, run)
        assert port.given_back == ["e1"] and "e1" not in port.recorded
        assert loop.counters["reported"] == 2
    else:  # ends as the platform's error, naming why
        pull(port, run)
        assert port.recorded["e1"]["error_code"] == "image_unavailable"
        assert port.recorded["e1"]["status"] == "error"
