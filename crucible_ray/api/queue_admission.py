"""Admission on the queue plane: validate here, then record and queue in one transaction.

The replica checks each item against the one sandbox policy (``execution/work.validate_work``,
the same code that shapes what executors run), then ``QueuePlane.admit`` writes the records,
the sealed requests and the user's counter in one store transaction, all or none. So a record
exists only for work that is queued, or (a batch item the policy refused) already ended: a
refusal leaves nothing to forget, and no record waits for reconciliation to end it. Unlike the
dispatcher plane, a batch is admitted whole or refused whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import Request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from crucible_ray.api.admission import (
    Duplicate,
    Submission,
    count_flagged,
    new_records,
    refuse,
    store_unavailable,
)
from crucible_ray.api.deps import Services, client_address
from crucible_ray.api.plane import QueuePlane
from crucible_ray.audit import audit_admission, audit_refusal
from crucible_ray.errors import InvalidRequest
from crucible_ray.execution import telemetry
from crucible_ray.execution.work import Work, validate_work
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.store import NewEvaluation


async def admit_durably(
    svc: Services, plane: QueuePlane, user: str, request: Request,
    items: Sequence[tuple[str, Submission]], batch_id: str | None, digest: str | None,
) -> list[NewEvaluation]:  # fmt: skip
    """The records admitted (all of them), or an HTTP refusal (nothing written)."""
    records = await new_records(user, items, batch_id, digest)
    works: list[tuple[NewEvaluation, Work]] = []
    ended: list[tuple[NewEvaluation, EvalResult]] = []
    for record, (_, item) in zip(records, items, strict=True):
        try:
            works.append((record, validate_work(item.kind, item.request_body(),
                                                svc.settings.sandbox)))  # fmt: skip
        except InvalidRequest as exc:
            if batch_id is None:  # the user's own mistake: charged, like on the other plane
                telemetry.refused("invalid")
                answer = {"reason": "invalid", "message": str(exc), "field": exc.field}
                refuse(answer, request, user)
            detail = f"{exc.field or 'body'}: {exc}"
            final = EvalResult(id=record.id, status=EvalStatus.ERROR, language=item.language,
                               image=record.image,
                               **error_fields(Reason.INVALID_REQUEST, detail))  # fmt: skip
            ended.append((record, final))
    try:
        answer = await asyncio.to_thread(plane.admit, user, works, ended)
    except IntegrityError:  # its id exists: a request with the same Idempotency-Key was first
        await svc.limiter.refund(user)
        raise Duplicate() from None
    except SQLAlchemyError as exc:  # store down: refused. If the commit went through after
        # all, the work runs and ends with its result like any other: nothing is lost.
        await svc.limiter.refund(user)
        audit_refusal("refused_store_unavailable", user=user, client=client_address(request))
        raise store_unavailable(exc) from exc
    if not answer["accepted"]:
        telemetry.refused(answer["reason"])
        await svc.limiter.refund(user)  # the platform's refusal costs the user nothing
        refuse(answer, request, user)
    client = client_address(request)
    for record, _ in works:
        telemetry.admitted()
        audit_admission(record.id, user, client, record.code_sha256, record.language)
    count_flagged(records)
    return records
