"""Work as the queue plane carries it: a validated evaluation or judge request with what its
run needs (image, time budget), encoded for the durable queue, and the result the platform
writes when the work ends without running to its own result.

Pure: admission (``dispatch.py``) validates and encodes, executors decode; both use the same
policy, so a request is checked once and never re-derived differently on the other side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from crucible_ray.errors import InvalidRequest
from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.limits import budget_s, check_request
from crucible_ray.judge.models import JudgeRequest, JudgeResult
from crucible_ray.judge.verdicts import Verdict
from crucible_ray.languages import IMAGES, get_image
from crucible_ray.models import EvalRequest, EvalResult, EvalStatus, utcnow
from crucible_ray.policy import SandboxPolicy
from crucible_ray.reasons import Reason, error_fields

EVAL, JUDGE = "eval", "judge"  # an evaluation, or a judged submission
WORK_VERSION = 1


@dataclass(frozen=True)
class Work:
    kind: str
    request: dict[str, Any]  # the validated request, as JSON
    language: str
    image: str
    budget_s: float  # the longest its run may take, compile stage included
    tests: int = 0  # a judged submission's

    def encode(self) -> bytes:
        return json.dumps({"v": WORK_VERSION, "kind": self.kind, "request": self.request,
                           "language": self.language, "image": self.image,
                           "budget_s": self.budget_s, "tests": self.tests},
                          separators=(",", ":")).encode()  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> Work:
        fields = json.loads(data)
        if fields.pop("v") != WORK_VERSION:
            raise ValueError("queued work of another version")
        return cls(**fields)


def validate_work(kind: str, request: dict[str, Any], policy: SandboxPolicy) -> Work:
    """The request checked against the policy, or InvalidRequest naming the field."""
    try:
        if kind == JUDGE:
            judged = JudgeRequest.model_validate(request)
            spec = get_image(judged.language, judged.image)
            language_policy = policy.for_language(spec.policy_overrides)
            check_request(judged, language_policy, spec)
            return Work(JUDGE, judged.model_dump(mode="json"), judged.language, spec.name,
                        budget_s(judged, language_policy), len(judged.tests))  # fmt: skip
        if kind != EVAL:
            raise InvalidRequest(f"unknown kind of work {kind!r}", field="kind")
        parsed = EvalRequest.model_validate(request)
        spec, _, timeout_s = policy.resolve(parsed)
        return Work(EVAL, parsed.model_dump(mode="json"), parsed.language, spec.name,
                    timeout_s + IMAGES[spec.name].compile_time_s)  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(first["msg"], field=where) from None


def platform_result(eval_id: str, work: Work, status: EvalStatus,
                    reason: Reason | None = None) -> EvalResult | JudgeResult:  # fmt: skip
    """The result of work the platform ended (cancelled, or an error that is not the
    program's): a judged one is IE, so its score is null, never a fake zero."""
    final = {"finished_at": utcnow()} if status.is_final else {}
    if work.kind == JUDGE:
        verdict = {"verdict": Verdict.IE} if status == EvalStatus.ERROR else {}
        return JudgeResult(id=eval_id, status=status, language=work.language, image=work.image,
                           total=work.tests, compare_version=COMPARE_VERSION,
                           driver_version=DRIVER_VERSION, **verdict, **error_fields(reason),
                           **final)  # fmt: skip
    return EvalResult(id=eval_id, status=status, language=work.language, image=work.image,
                      **error_fields(reason), **final)  # fmt: skip
