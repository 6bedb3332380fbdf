"""The blocking client's driver of a judge batch (:class:`crucible_ray.client.groups.GroupStream`
is the plan): read, send, follow, hand over."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from crucible_ray.client.groups import PATH, POLL_S, GroupStream, Yielded
from crucible_ray.errors import CrucibleError, DeadlineExceeded
from crucible_ray.judge.models import JudgeResult
from crucible_ray.progress import Tally, progress_bar

if TYPE_CHECKING:
    from crucible_ray.client.retry import Retrier
    from crucible_ray.client.sync import Client


def stream_group(client: Client, plan: GroupStream, progress: bool | None,
                 total: int | None) -> Iterator[Yielded]:  # fmt: skip
    """The blocking driver: read, send, follow and hand over until every submission has its
    result. Each result is handed over before the next network call, and the deadline
    (``client``'s) restarts at every one."""
    retrier, pause = client._retrier(), POLL_S[0]
    with progress_bar(total, enabled=progress, description="judgings") as tally:
        try:
            while plan.busy:
                plan.fill()
                handed = yield from _hand_over(plan, tally)
                if plan.pending and plan.chunk:
                    _send_next(client, plan, retrier)
                while plan.late:
                    data = client._get(f"/api/judge/{plan.late[0][2]}", retrier)
                    plan.late_fetched(JudgeResult.model_validate(data))
                    handed += yield from _hand_over(plan, tally)
                for batch_id in list(plan.following):
                    status = client._get(f"/api/batch/{batch_id}", retrier)
                    if plan.news(batch_id, status["counts"]):
                        plan.finished(batch_id, list(client._batch_lines(batch_id)))
                        handed += yield from _hand_over(plan, tally)
                if handed:
                    retrier, pause = client._retrier(), POLL_S[0]  # progress: a new deadline
                elif plan.following and not (plan.pending and plan.chunk):
                    if retrier.remaining_s <= pause:
                        raise DeadlineExceeded("judgings not finished in time")
                    time.sleep(pause)
                    pause = min(POLL_S[1], pause * 1.5)
        except DeadlineExceeded as error:
            for position, result in plan.lost(str(error)):
                tally.advance(result.verdict or result.status.value)
                yield position, result


def _hand_over(plan: GroupStream, tally: Tally) -> Generator[Yielded, None, int]:
    handed = 0
    while plan.ready:
        position, result = plan.ready.popleft()
        tally.advance(result.verdict or result.status.value)
        handed += 1
        yield position, result
    return handed


def _send_next(client: Client, plan: GroupStream, retrier: Retrier) -> None:
    chunk = plan.next_chunk()
    body, key = plan.request(chunk)
    try:
        answer = client._send("POST", PATH, None, body=body, key=key).json()
    except CrucibleError as error:
        if plan.refused(chunk, error):
            time.sleep(retrier.pause(error))  # raises when not retryable, or out of time
        return
    plan.accepted(chunk, answer)
