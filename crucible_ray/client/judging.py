"""The blocking client's judging calls (mixed into :class:`crucible_ray.client.Client`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crucible_ray.api.schemas import JudgeSubmission
from crucible_ray.client import protocol
from crucible_ray.errors import DeadlineExceeded
from crucible_ray.judge.models import JudgeResult, JudgeTest

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
        tests: Sequence[JudgeTest | dict[str, Any]],
        *,
        language: str = "python",
        image: str | None = None,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> JudgeResult:
        """Judge ``code`` against ``tests`` (JudgeTest or dicts: ``stdin``, ``expected_stdout``
        ...) and return the final result. ``options`` are JudgeRequest fields: ``compare``,
        ``limits``, ``stop_on_first_failure``, ``scoring``, ``subtask_points``. The request is
        validated here first: a pydantic ValidationError names the field at fault."""
        body = JudgeSubmission(code=code, tests=list(tests), language=language, image=image,
                               metadata=metadata, **options)  # fmt: skip
        retrier = self._retrier()
        answer = self._send("POST", "/api/judge", retrier, body=body.model_dump(mode="json"),
                            params={"wait": "true"}, key=protocol.new_key())  # fmt: skip
        data = answer.json()
        if answer.status_code == 200:
            return JudgeResult.model_validate(data)
        return self._final_judgement(data["id"], retrier)

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
