"""The asyncio client's judging calls (mixed into :class:`crucible_ray.client.AsyncClient`):
the same methods as the blocking client's, with the same requests, retries and results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any

from crucible_ray.api.schemas import JudgeSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import unfinished_judgement
from crucible_ray.client.groups import (
    PATH,
    POLL_S,
    GroupStream,
    Yielded,
    group_stream,
    in_order,
)
from crucible_ray.client.judging import LONG_POLL_S
from crucible_ray.errors import CrucibleError, DeadlineExceeded, InvalidRequest
from crucible_ray.judge.models import JudgeResult, JudgeTest
from crucible_ray.judge.testsets import TestSetInfo
from crucible_ray.progress import Tally, progress_bar

if TYPE_CHECKING:
    import httpx

    from crucible_ray.client.retry import Retrier

Tests = Sequence[JudgeTest | dict[str, Any]]


class AsyncJudgeCalls:
    if TYPE_CHECKING:
        _http: httpx.AsyncClient

        def _retrier(self, deadline_s: float | None = None) -> Retrier: ...
        async def _get(self, path: str, retrier: Retrier, **kwargs: Any) -> Any: ...
        async def _send(self, method: str, path: str, retrier: Retrier | None,
                        **kwargs: Any) -> Any: ...  # fmt: skip

    async def judge(self, code: str, tests: Tests | None = None, *, testset: str | None = None,
                    language: str = "python", image: str | None = None,
                    metadata: dict[str, Any] | None = None,
                    **options: Any) -> JudgeResult:  # fmt: skip
        """As ``Client.judge``."""
        body = protocol.judge_body(code, tests, testset, language, image, metadata, options)
        retrier = self._retrier()
        answer = await self._send("POST", "/api/judge", retrier, params={"wait": "true"},
                                  body=body, key=protocol.new_key())  # fmt: skip
        data = answer.json()
        if answer.status_code == 200:
            return JudgeResult.model_validate(data)
        return await self._final_judgement(data["id"], retrier)

    async def judgement(self, judge_id: str, *, wait: bool | float = False) -> JudgeResult:
        if wait:
            retrier = self._retrier(None if wait is True else float(wait))
            try:
                return await self._final_judgement(judge_id, retrier)
            except DeadlineExceeded:
                pass
        return JudgeResult.model_validate(await self._get(f"/api/judge/{judge_id}",
                                                          self._retrier()))  # fmt: skip

    async def cancel_judgement(self, judge_id: str) -> JudgeResult:
        answer = await self._send("DELETE", f"/api/judge/{judge_id}", self._retrier(),
                                  accept=(409,))  # fmt: skip
        if answer.status_code == 409:
            return await self.judgement(judge_id)
        return JudgeResult.model_validate(answer.json())

    async def upload_testset(self, tests: Tests) -> TestSetInfo:
        """As ``Client.upload_testset``."""
        answer = await self._send("PUT", "/api/testsets", self._retrier(),
                                  body=protocol.testset_body(tests))  # fmt: skip
        return TestSetInfo.model_validate(answer.json())

    async def judge_many(self, submissions: Iterable[JudgeSubmission | dict[str, Any]], *,
                         concurrency: int = 8, progress: bool | None = None,
                         total: int | None = None) -> AsyncIterator[JudgeResult]:  # fmt: skip
        """As ``Client.judge_many``: lazily read, at most ``concurrency`` at a time, results as
        they finish."""
        pending = iter(submissions)
        if total is None and hasattr(submissions, "__len__"):
            total = len(submissions)  # type: ignore[arg-type]
        running: set[asyncio.Task[JudgeResult]] = set()
        try:
            with progress_bar(total, enabled=progress, description="judgings") as tally:
                while True:
                    for item in pending:
                        running.add(asyncio.create_task(self._judge_one(_submission(item))))
                        if len(running) >= concurrency:
                            break
                    if not running:
                        return
                    done, running = await asyncio.wait(running, return_when="FIRST_COMPLETED")
                    for task in done:
                        result = task.result()
                        tally.advance(result.verdict or result.status.value)
                        yield result
        finally:
            for task in running:
                task.cancel()

    async def judge_batch(self, submissions: Iterable[str | dict[str, Any]],
                          tests: Tests | None = None, *, testset: str | None = None,
                          language: str = "python", image: str | None = None,
                          progress: bool | None = None, window: int = 256,
                          **options: Any) -> list[JudgeResult]:  # fmt: skip
        """As ``Client.judge_batch``: results in the submissions' order."""
        stream = self.iter_judge_batch(submissions, tests, testset=testset, language=language,
                                       image=image, progress=progress, window=window,
                                       **options)  # fmt: skip
        return in_order([pair async for pair in stream])

    async def iter_judge_batch(self, submissions: Iterable[str | dict[str, Any]],
                               tests: Tests | None = None, *, testset: str | None = None,
                               language: str = "python", image: str | None = None,
                               progress: bool | None = None, window: int = 256,
                               **options: Any) -> AsyncIterator[Yielded]:  # fmt: skip
        """As ``Client.iter_judge_batch``: ``(position, result)`` as each judging ends."""
        if tests is not None and testset is not None:
            raise InvalidRequest("give either tests or testset", field="testset")
        if tests is not None:
            testset = (await self.upload_testset(tests)).id
        plan = group_stream(submissions, testset, language, image, window, options)
        total = len(submissions) if isinstance(submissions, Sized) else None
        retrier, pause = self._retrier(), POLL_S[0]
        with progress_bar(total, enabled=progress, description="judgings") as tally:
            try:
                while plan.busy:
                    plan.fill()
                    handed = 0
                    for pair in _ready(plan, tally):
                        handed += 1
                        yield pair
                    if plan.pending and plan.chunk:
                        await self._send_next(plan, retrier)
                    while plan.late:
                        data = await self._get(f"/api/judge/{plan.late[0][2]}", retrier)
                        plan.late_fetched(JudgeResult.model_validate(data))
                    for batch_id in list(plan.following):
                        status = await self._get(f"/api/batch/{batch_id}", retrier)
                        if plan.news(batch_id, status["counts"]):
                            plan.finished(batch_id, await self._batch_lines(batch_id))
                    for pair in _ready(plan, tally):  # before the next network call
                        handed += 1
                        yield pair
                    if handed:
                        retrier, pause = self._retrier(), POLL_S[0]  # progress: a new deadline
                    elif plan.following and not (plan.pending and plan.chunk):
                        if retrier.remaining_s <= pause:
                            raise DeadlineExceeded("judgings not finished in time")
                        await asyncio.sleep(pause)
                        pause = min(POLL_S[1], pause * 1.5)
            except DeadlineExceeded as error:
                for position, result in plan.lost(str(error)):
                    tally.advance(result.verdict or result.status.value)
                    yield position, result

    async def _send_next(self, plan: GroupStream, retrier: Retrier) -> None:
        chunk = plan.next_chunk()
        body, key = plan.request(chunk)
        try:
            answer = (await self._send("POST", PATH, None, body=body, key=key)).json()
        except CrucibleError as error:
            if plan.refused(chunk, error):
                await asyncio.sleep(retrier.pause(error))  # raises: not retryable, or too late
            return
        plan.accepted(chunk, answer)

    async def _batch_lines(self, batch_id: str) -> list[dict[str, Any]]:
        async with self._http.stream("GET", f"/api/batch/{batch_id}/results") as answer:
            if answer.status_code >= 400:
                await answer.aread()
                raise protocol.error_for(answer)
            return [json.loads(line) async for line in answer.aiter_lines() if line.strip()]

    async def _judge_one(self, item: JudgeSubmission) -> JudgeResult:
        fields = item.model_dump(exclude={"code", "tests", "language", "image"}, exclude_unset=True)
        try:
            return await self.judge(item.code, item.tests, language=item.language,
                                    image=item.image, **fields)  # fmt: skip
        except InvalidRequest:
            raise
        except CrucibleError as error:  # one lost judging must not lose the others
            why = "not finished in time" if isinstance(error, DeadlineExceeded) else str(error)
            return unfinished_judgement(item.language, item.image, item.metadata, why,
                                        len(item.tests or ()))  # fmt: skip

    async def _final_judgement(self, judge_id: str, retrier: Retrier) -> JudgeResult:
        while True:
            remaining = retrier.remaining_s
            if remaining <= 0:
                raise DeadlineExceeded(f"judging {judge_id} not finished in time")
            params = {"wait": f"{min(LONG_POLL_S, max(remaining, 0.1)):.1f}"}
            result = JudgeResult.model_validate(
                await self._get(f"/api/judge/{judge_id}", retrier, params=params)
            )
            if result.status.is_final:
                return result


def _submission(item: JudgeSubmission | dict[str, Any]) -> JudgeSubmission:
    return item if isinstance(item, JudgeSubmission) else JudgeSubmission(**item)


def _ready(plan: GroupStream, tally: Tally) -> Iterator[Yielded]:
    while plan.ready:
        position, result = plan.ready.popleft()
        tally.advance(result.verdict or result.status.value)
        yield position, result
