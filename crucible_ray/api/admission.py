"""What every submission goes through before a plane admits it (size and rate limits, room,
its records), and the mapping of refusals to HTTP answers. Admission itself is ``accept.py``:
each plane has its own path (``dispatcher_admission.py``, ``queue_admission.py``)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request, status

from crucible_ray.api.analyser import analyse
from crucible_ray.api.deps import Services, client_address
from crucible_ray.api.schemas import EvalSubmission, JudgeSubmission
from crucible_ray.audit import audit_refusal
from crucible_ray.errors import InvalidRequest
from crucible_ray.judge.limits import check_test_data
from crucible_ray.judge.models import JudgeOptions
from crucible_ray.metrics import metrics
from crucible_ray.models import EvalResult
from crucible_ray.reasons import Reason
from crucible_ray.store import NewEvaluation

Submission = EvalSubmission | JudgeSubmission  # what is recorded, then admitted
# On 429: rate_limited or overloaded; on 503: no_executor or store_unavailable.
REFUSAL_HEADER = "X-Crucible-Refusal"
STORE_RETRY_AFTER_S = 5
log = logging.getLogger(__name__)


def live(answer: dict[str, Any], metadata: Any, warnings: list[str]) -> EvalResult:
    """The dispatcher's view of an evaluation, with what only the record holds."""
    return EvalResult.model_validate(answer).model_copy(
        update={"metadata": metadata, "warnings": warnings}
    )


def too_many(
    message: str, retry_after_s: float, reason: str = Reason.OVERLOADED.value
) -> HTTPException:
    """429; the ``X-Crucible-Refusal`` header tells clients a rate limit from an overload."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": str(max(1, round(retry_after_s))), REFUSAL_HEADER: reason},
    )


def check_limits(svc: Services, items: Sequence[Submission]) -> None:
    """Batch size (422), code size (413) and metadata size (422), before anything is recorded.

    Both come from the settings: the code limit from the one sandbox policy, the object the
    dispatcher checks the rest with (stdin, timeout: 422 for a single submission, an ``error``
    result of its own for a batch item) and hands to every executor and sandbox.
    """
    if len(items) > svc.settings.max_batch_items:
        message = f"at most {svc.settings.max_batch_items} items per batch"
        raise unprocessable(["body", "items"], message)
    metadata_limit = svc.settings.metadata_limit_bytes
    for index, item in enumerate(items):
        try:
            svc.settings.sandbox.for_request(item.language, item.image).check_code_size(item.code)
        except InvalidRequest as exc:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from None
        if item.metadata is not None and len(json.dumps(item.metadata)) > metadata_limit:
            where = ["body", "items", index, "metadata"] if len(items) > 1 else ["body", "metadata"]
            message = f"metadata must serialise to at most {metadata_limit} bytes of JSON"
            raise unprocessable(where, message)


async def check_room(svc: Services, wanted: int) -> None:
    """429 unless ``wanted`` more can be admitted now. Asked first: a batch refused for
    overload is not charged to the user's rate limit."""
    stats = await svc.plane.stats()
    room = stats["admission_limit"] - stats["queued"] - stats["running"]
    if wanted > room:
        raise too_many(f"only {max(room, 0)} evaluations can be admitted now", 2.0)


def check_test_data_size(svc: Services, item: JudgeOptions, canonical: bytes | None = None) -> None:
    """413 for more test data than the policy allows (checked once per request: a batch's
    submissions share their tests)."""
    if item.tests is None:
        return  # named: checked when it was stored, and by the dispatcher
    try:
        policy = svc.settings.sandbox.for_request(item.language, item.image)
        check_test_data(item.tests, policy, canonical)
    except InvalidRequest as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from None


def unprocessable(loc: list[Any], message: str) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


async def rate_limit(svc: Services, user: str, request: Request) -> None:
    retry_after = await svc.limiter.acquire(user)
    if retry_after:
        audit_refusal("rate_limited", user=user, client=client_address(request))
        metrics().inc("crucible_rate_limited")
        limit = svc.settings.rate_limit_per_minute
        raise too_many(f"rate limit of {limit}/minute", retry_after, Reason.RATE_LIMITED.value)


async def new_records(user: str, items: Sequence[tuple[str, Submission]], batch_id: str | None,
                      digest: str | None) -> list[NewEvaluation]:  # fmt: skip
    """The records of a submission, with the static analyser's warnings."""
    warnings = await analyse([(item.language, item.code) for _, item in items])
    return [
        NewEvaluation(id=eval_id, user=user, code=item.code, language=item.language,
                      image=item.image_name, warnings=warnings[index], metadata=item.metadata,
                      batch_id=batch_id, batch_index=index if batch_id else None,
                      request_sha256=digest, kind=stored_kind(item))
        for index, (eval_id, item) in enumerate(items)
    ]  # fmt: skip


def count_flagged(records: Sequence[NewEvaluation]) -> None:
    """Once recorded: submissions the static analyser flagged, by language."""
    for record in records:
        if record.warnings:
            metrics().inc("crucible_flagged_submissions", language=record.language)


def stored_kind(item: Submission) -> str | None:
    """What the store records it as (None: an evaluation)."""
    return None if item.kind == "eval" else item.kind


def submission_context(user: str, request: Request, item: Submission) -> dict[str, Any]:
    """Who asked, for the audit event of the evaluation (never the code itself)."""
    return {"user": user, "client": client_address(request),
            "code_sha256": hashlib.sha256(item.code.encode()).hexdigest()}  # fmt: skip


class Duplicate(Exception):
    """The submission's id is recorded already: another request with its Idempotency-Key."""


def store_unavailable(exc: Exception) -> HTTPException:
    log.warning("result store unavailable: %s", exc)  # the details stay in the server log
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"{Reason.STORE_UNAVAILABLE.sentence}; try again later",
        headers={
            "Retry-After": str(STORE_RETRY_AFTER_S),
            REFUSAL_HEADER: Reason.STORE_UNAVAILABLE.value,
        },
    )


def refuse(answer: dict[str, Any], request: Request, user: str) -> None:
    audit_refusal(f"refused_{answer['reason']}", user=user, client=client_address(request))
    if answer["reason"] == "overloaded":
        raise too_many(answer["message"], answer["retry_after_s"] or 1.0)
    if answer["reason"] == "invalid":
        raise unprocessable(["body", answer.get("field") or "body"], answer["message"])
    raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, answer["message"],
                        headers={REFUSAL_HEADER: Reason.NO_EXECUTOR.value})  # fmt: skip
