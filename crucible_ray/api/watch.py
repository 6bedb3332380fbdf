"""Waiting for results on the queue plane: one batched poll per ingress replica.

Results reach the store from the executors (through Dispatch), never through the ingress. A
request that waits registers its id here. One task per replica then asks the store every
``poll_s`` which of all the waited-for ids are final, in one query, and wakes their waiters.
The store sees one query per replica per interval however many requests wait (256 ids cost
the server 0.7 ms: ``benchmarks/results/queue.md``), and nothing needs LISTEN/NOTIFY, whose
commit-time lock would serialise every result's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)
POLL_S = 0.05
MAX_IDS_PER_QUERY = 1000  # the query's IN list; more waits are asked in several queries


class ResultWatch:
    """Wakes waiters when their records turn final. Runs on one event loop (the replica's)."""

    def __init__(self, final_among: Callable[[Sequence[str]], set[str]],
                 poll_s: float = POLL_S) -> None:  # fmt: skip
        self._final_among = final_among
        self.poll_s = poll_s
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def wait(self, eval_id: str, timeout_s: float) -> bool:
        """True once the record is final (as the store says), False if ``timeout_s`` passes
        first. A store that does not answer only makes the wait run out its time."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(eval_id, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            futures = self._waiting.get(eval_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(eval_id, None)

    async def _poll(self) -> None:
        """Runs while anyone waits; ends (and a later wait starts it again) when nobody does."""
        while self._waiting:
            ids = list(self._waiting)
            final: set[str] = set()
            try:
                for start in range(0, len(ids), MAX_IDS_PER_QUERY):
                    chunk = ids[start : start + MAX_IDS_PER_QUERY]
                    final |= await asyncio.to_thread(self._final_among, chunk)
            except Exception as exc:  # the store down: the waits run out their time meanwhile
                log.warning("result poll failed: %s", type(exc).__name__)
            for eval_id in final:
                for future in self._waiting.get(eval_id, []):
                    if not future.done():
                        future.set_result(None)
            await asyncio.sleep(self.poll_s)
