"""BatchJob on the queue plane: each evaluation admitted through a Dispatch actor (one store
transaction, idempotent by id), results found with one query per poll for the whole window.

Nothing needs resubmitting here: an admitted evaluation is durable and ends with its result
whatever process dies, so the job only waits for it. A job killed and resumed admits the ids
it had in flight again; the store recognises them and their results are written once.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

from crucible_ray.batch.job import BatchJob, Pending
from crucible_ray.execution.client import raise_for_refusal
from crucible_ray.execution.queue_client import QueueClient

POLL_S = (0.1, 1.0)  # result polls back off from the first to the second


class QueueBatchJob(BatchJob):
    def _connect(self, dispatcher: Any) -> int:
        self.client = QueueClient(f"batch:{getpass.getuser()}")
        limits = self.client.limits()
        return min(limits["admission_limit"], limits["user_admission_limit"])

    def _admit(self, pending: Pending) -> None:
        item = pending.item
        raise_for_refusal(self.client.admit([(pending.eval_id, item.kind, item.request())]))

    def _reconnect(self) -> None:
        pass  # QueueClient moves on to the next Dispatch actor by itself

    def _track(self, pending: Pending) -> None:
        self._inflight[pending.eval_id] = pending

    def _collect(self, timeout_s: float) -> None:
        """Write every result that is final within ``timeout_s`` (or sleep that long)."""
        deadline, pause = time.monotonic() + timeout_s, POLL_S[0]
        while True:
            if self._inflight:
                for answer in self.client.finished(list(self._inflight)):
                    self._write(self._inflight.pop(answer["id"]), answer)
                    pause = 0.0  # something ended: return at once
            left = deadline - time.monotonic()
            if pause == 0.0 or left <= 0:
                return
            time.sleep(min(pause, left))
            pause = min(pause * 2, POLL_S[1])
