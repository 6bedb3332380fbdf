"""The blocking client's judging calls (mixed into :class:`crucible_ray.client.Client`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from crucible_ray.api.schemas import JudgeSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import unfinished_judgement
from crucible_ray.client.group_driver import stream_group
from crucible_ray.client.groups import group_stream, in_order
from crucible_ray.errors import CrucibleError, DeadlineExceeded, InvalidRequest
from crucible_ray.judge.models import JudgeResult, JudgeTest
from crucible_ray.judge.testsets import TestSetInfo
from crucible_ray.progress import progress_bar

if TYPE_CHECKING:
    from crucible_ray.client.retry import Retrier

LONG_POLL_S = 55.0  # below the server's 60 s limit and the client's request timeout


class JudgeCalls:
    """``judge`` one submission against its tests; follow or cancel a judging by id."""

    if TYPE_CHECKING:

        def _retrier(self, deadline_s: float | None = None) -> Retrier: ...
        def _get(self, path: str, retrier: Retrier, **kwargs: Any) -> Any: ...
        def _send(self, method: str, path: str, retrier: Retrier | None, **kwargs: Any) -> Any: ...

    def judge(
        self,
        code: str,
        tests: Sequence[JudgeTest | dict[str, Any]] | None = None,
        *,
        testset: str | None = None,
        language: str = "python",
        image: str | None = None,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> JudgeResult:
        """Judge ``code`` against ``tests`` (JudgeTest or dicts: ``stdin``, ``expected_stdout``
        ...), or against a stored ``testset`` (:meth:`upload_testset`), and return the final
        result. ``options`` are JudgeRequest fields: ``mode``, ``entry_point``, ``compare``,
        ``limits``, ``stop_on_first_failure``, ``scoring``, ``subtask_points``. The request is
        validated here first: a pydantic ValidationError names the field at fault."""
        body = protocol.judge_body(code, tests, testset, language, image, metadata, options)
        retrier = self._retrier()
        answer = self._send("POST", "/api/judge", retrier, params={"wait": "true"}, body=body,
                            key=protocol.new_key())  # fmt: skip
        data = answer.json()
        if answer.status_code == 200:
            return JudgeResult.model_validate(data)
        return self._final_judgement(data["id"], retrier)

    def upload_testset(self, tests: Sequence[JudgeTest | dict[str, Any]]) -> TestSetInfo:
        """Store ``tests`` on the server once; judge requests then name them by the returned
        ``id`` (``testset=``) instead of sending them. Storing the same tests again returns
        the same id (and keeps them from expiring)."""
        body = protocol.testset_body(tests)
        return TestSetInfo.model_validate(
            self._send("PUT", "/api/testsets", self._retrier(), body=body).json()
        )

    def judge_batch(
        self,
        submissions: Iterable[str | dict[str, Any]],
        tests: Sequence[JudgeTest | dict[str, Any]] | None = None,
        *,
        testset: str | None = None,
        language: str = "python",
        image: str | None = None,
        progress: bool | None = None,
        window: int = 256,
        **options: Any,
    ) -> list[JudgeResult]:
        """Judge many submissions (code strings, or dicts with ``code`` and optionally
        ``language``, ``image``, ``metadata``) on one set of tests and options: the shape of an
        RL group or a leaderboard run. Results come back in the submissions' order; identical
        submissions are judged once and share the judging. Inline ``tests`` are stored once
        first (:meth:`upload_testset`). ``options`` are as for :meth:`judge`. For inputs too
        large to hold every result, :meth:`iter_judge_batch` hands each over as it ends."""
        stream = self.iter_judge_batch(submissions, tests, testset=testset, language=language,
                                       image=image, progress=progress, window=window,
                                       **options)  # fmt: skip
        return in_order(stream)

    def iter_judge_batch(
        self,
        submissions: Iterable[str | dict[str, Any]],
        tests: Sequence[JudgeTest | dict[str, Any]] | None = None,
        *,
        testset: str | None = None,
        language: str = "python",
        image: str | None = None,
        progress: bool | None = None,
        window: int = 256,
        **options: Any,
    ) -> Iterator[tuple[int, JudgeResult]]:
        """As :meth:`judge_batch`, yielding ``(position, result)`` as each judging ends
        (``position`` indexes the input). The input is read lazily and at most ``window``
        distinct submissions are in flight, so memory stays flat however many there are; a
        judging that ends past the deadline comes back as an IE result with a null score."""
        if tests is not None and testset is not None:
            raise InvalidRequest("give either tests or testset", field="testset")
        if tests is not None:
            testset = self.upload_testset(tests).id
        plan = group_stream(submissions, testset, language, image, window, options)
        total = len(submissions) if isinstance(submissions, Sized) else None
        return stream_group(self, plan, progress, total)  # type: ignore[arg-type]

    def judge_many(
        self,
        submissions: Iterable[JudgeSubmission | dict[str, Any]],
        *,
        concurrency: int = 8,
        progress: bool | None = None,
        total: int | None = None,
    ) -> Iterator[JudgeResult]:
        """Judge many submissions (JudgeSubmission, or dicts of its fields: ``code``, ``tests``,
        ``metadata``...), at most ``concurrency`` at a time, yielding results as they finish
        (match them by ``metadata``: it is echoed back). Read lazily, so the input may be a
        generator of any length; each judging retries as ``judge`` does. One that cannot be
        followed to the end comes back as an ``error`` result (verdict IE, score null). An
        invalid submission raises (pydantic's ValidationError, or InvalidRequest from the
        server) when it is reached."""
        pending = (self._submission(item) for item in submissions)
        if total is None and hasattr(submissions, "__len__"):
            total = len(submissions)  # type: ignore[arg-type]
        pool = ThreadPoolExecutor(concurrency, thread_name_prefix="crucible-judge")
        running: set[Future[JudgeResult]] = set()
        try:
            with progress_bar(total, enabled=progress) as tally:
                while True:
                    for item in itertools.islice(pending, concurrency - len(running)):
                        running.add(pool.submit(self._judge_one, item))
                    if not running:
                        return
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        tally.advance(result.verdict or result.status.value)
                        yield result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _submission(item: JudgeSubmission | dict[str, Any]) -> JudgeSubmission:
        return item if isinstance(item, JudgeSubmission) else JudgeSubmission(**item)

    def _judge_one(self, item: JudgeSubmission) -> JudgeResult:
        # a named testset is among the fields
        fields = item.model_dump(exclude={"code", "tests", "language", "image"}, exclude_unset=True)
        try:
            return self.judge(
                item.code, item.tests, language=item.language, image=item.image, **fields
            )
        except InvalidRequest:
            raise
        except CrucibleError as error:  # one lost judging must not lose the others
            why = "not finished in time" if isinstance(error, DeadlineExceeded) else str(error)
            return unfinished_judgement(item.language, item.image, item.metadata, why,
                                        len(item.tests or ()))  # fmt: skip

    def judgement(self, judge_id: str, *, wait: bool | float = False) -> JudgeResult:
        """A judging's state; with ``wait`` (True: the deadline, or seconds), its final result
        if it finishes in time, else its state at the end of the wait."""
        if wait:
            retrier = self._retrier(None if wait is True else float(wait))
            try:
                return self._final_judgement(judge_id, retrier)
            except DeadlineExceeded:
                pass
        return JudgeResult.model_validate(self._get(f"/api/judge/{judge_id}", self._retrier()))

    def cancel_judgement(self, judge_id: str) -> JudgeResult:
        """Cancel a queued or running judging; a finished one is returned unchanged."""
        answer = self._send("DELETE", f"/api/judge/{judge_id}", self._retrier(), accept=(409,))
        if answer.status_code == 409:
            return self.judgement(judge_id)
        return JudgeResult.model_validate(answer.json())

    def _final_judgement(self, judge_id: str, retrier: Retrier) -> JudgeResult:
        while True:
            remaining = retrier.remaining_s
            if remaining <= 0:
                raise DeadlineExceeded(f"judging {judge_id} not finished in time")
            params = {"wait": f"{min(LONG_POLL_S, max(remaining, 0.1)):.1f}"}
            result = JudgeResult.model_validate(
                self._get(f"/api/judge/{judge_id}", retrier, params=params)
            )
            if result.status.is_final:
                return result
