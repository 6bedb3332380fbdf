"""The asyncio client's judging calls (mixed into :class:`crucible_ray.client.AsyncClient`):
the same methods as the blocking client's, with the same requests, retries and results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crucible_ray.api.schemas import JudgeSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import unfinished_judgement
from crucible_ray.client.groups import PATH, POLL_S, GroupPlan, group_plan
from crucible_ray.client.judging import LONG_POLL_S
from crucible_ray.errors import CrucibleError, DeadlineExceeded, InvalidRequest
from crucible_ray.judge.models import JudgeResult, JudgeTest
from crucible_ray.judge.testsets import TestSetInfo
from crucible_ray.progress import progress_bar

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
                          progress: bool | None = None, chunk: int = 500,
                          **options: Any) -> list[JudgeResult]:  # fmt: skip
        """As ``Client.judge_batch``: results in the submissions' order."""
        if tests is not None and testset is not None:
            raise InvalidRequest("give either tests or testset", field="testset")
        if tests is not None:
            testset = (await self.upload_testset(tests)).id
        plan = group_plan(submissions, testset, language, image, chunk, options)
        retrier, pause, why = self._retrier(), POLL_S[0], ""
        with progress_bar(len(plan.items), enabled=progress, description="judgings") as tally:
            try:
                while plan.busy:
                    if plan.pending:
                        await self._send_next(plan, retrier)
                    done = [b for b in list(plan.following)
                            if (await self._get(f"/api/batch/{b}", retrier))["done"]]  # fmt: skip
                    for batch_id in done:
                        plan.finished(batch_id, await self._batch_lines(batch_id), tally)
                    if not done and plan.busy:
                        if retrier.remaining_s <= pause:
                            raise DeadlineExceeded("judgings not finished in time")
                        await asyncio.sleep(pause)
                    pause = POLL_S[0] if done else min(POLL_S[1], pause * 1.5)
            except DeadlineExceeded as error:
                why = str(error)
        return plan.outcome(why)

    async def _send_next(self, plan: GroupPlan, retrier: Retrier) -> None:
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
