"""The ingress replica's batched wait for results (api/watch.py), against an in-memory set of
final ids: its logic only. The HTTP tests on the queue plane use it with the real store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from crucible_ray.api.watch import ResultWatch


class FinalIds:
    """What the store would answer, counting the queries."""

    def __init__(self) -> None:
        self.final: set[str] = set()
        self.queries: list[list[str]] = []
        self.fail = False

    def __call__(self, ids: Sequence[str]) -> set[str]:
        self.queries.append(sorted(ids))
        if self.fail:
            raise ConnectionError("store down")
        return self.final & set(ids)


def test_many_waiters_share_one_query_per_poll_and_wake_when_final():
    store = FinalIds()
    watch = ResultWatch(store, poll_s=0.01)

    async def scenario() -> list[bool]:
        waits = [asyncio.ensure_future(watch.wait(f"e{i}", 5)) for i in range(50)]
        waits.append(asyncio.ensure_future(watch.wait("e0", 5)))  # two waiters on one id
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waits)
        store.final |= {f"e{i}" for i in range(50)}
        return await asyncio.gather(*waits)

    assert asyncio.run(scenario()) == [True] * 51
    assert all(len(q) == 50 for q in store.queries)  # every waited id in each one query
    assert watch.waiting == 0


def test_a_wait_times_out_and_a_store_outage_only_delays():
    store = FinalIds()
    watch = ResultWatch(store, poll_s=0.01)

    async def scenario() -> tuple[bool, bool]:
        store.fail = True
        timed_out = await watch.wait("slow", 0.05)
        later = asyncio.ensure_future(watch.wait("slow", 5))
        await asyncio.sleep(0.05)
        store.fail, store.final = False, {"slow"}
        return timed_out, await later

    assert asyncio.run(scenario()) == (False, True)
    assert watch.waiting == 0


def test_the_poll_stops_when_nobody_waits():
    store = FinalIds()
    store.final = {"done"}
    watch = ResultWatch(store, poll_s=0.01)

    async def scenario() -> int:
        assert await watch.wait("done", 1)
        await asyncio.sleep(0.1)
        return len(store.queries)

    assert asyncio.run(scenario()) == 1
