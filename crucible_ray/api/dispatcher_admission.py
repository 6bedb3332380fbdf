"""Admission on the dispatcher plane: record first, then submit each evaluation to the
Dispatcher actor, forgetting whatever it did not admit.

A single submission the dispatcher refuses is forgotten and refused (422/429/503). In a batch,
an item the sandbox policy refuses ends alone as an ``error`` result; when the platform refuses
(overloaded, unavailable) part-way, that item and the rest are forgotten and the admitted
prefix is returned (nothing admitted: refused like a single one). Nothing recorded is left
queued with no evaluation behind it, whatever fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fastapi import Request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from crucible_ray.api.admission import (
    Duplicate,
    Submission,
    count_flagged,
    new_records,
    refuse,
    store_unavailable,
    submission_context,
)
from crucible_ray.api.deps import Services, client_address
from crucible_ray.api.plane import DispatcherPlane
from crucible_ray.audit import audit_refusal
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.store import NewEvaluation

log = logging.getLogger(__name__)


async def record_then_submit(
    svc: Services, plane: DispatcherPlane, user: str, request: Request,
    items: Sequence[tuple[str, Submission]], batch_id: str | None, digest: str | None,
) -> list[NewEvaluation]:  # fmt: skip
    """The records admitted (an ordered prefix of ``items``), or an HTTP refusal."""
    records = await new_records(user, items, batch_id, digest)
    try:
        await asyncio.to_thread(svc.store.add, records)
    except IntegrityError:  # its id exists: a request with the same Idempotency-Key was first
        await svc.limiter.refund(user)
        raise Duplicate() from None
    except SQLAlchemyError as exc:  # store down or its disk full: refuse, nothing was taken
        await svc.limiter.refund(user)
        # The commit's outcome is unknown: the server may have committed just before the
        # connection dropped. What is refused must not stay recorded: forget it once the
        # store answers again.
        _forget_when_back(svc, user, [r.id for r in records])
        audit_refusal("refused_store_unavailable", user=user, client=client_address(request))
        raise store_unavailable(exc) from exc
    count_flagged(records)
    admitted: list[NewEvaluation] = []
    try:
        for record, (eval_id, item) in zip(records, items, strict=True):
            context = submission_context(user, request, item)
            request_body = item.request_body()
            answer = await plane.submit(eval_id, request_body, context, item.kind)
            if answer["accepted"]:
                admitted.append(record)
            elif answer["reason"] == "invalid" and batch_id is not None:
                detail = f"{answer.get('field') or 'body'}: {answer['message']}"
                final = EvalResult(id=eval_id, status=EvalStatus.ERROR, language=item.language,
                                   image=record.image,
                                   **error_fields(Reason.INVALID_REQUEST, detail))  # fmt: skip
                await asyncio.to_thread(svc.store.finish, final)
                admitted.append(record)  # it has its final result
            else:
                break
    finally:  # refused, failed or cancelled: forget what was never admitted
        forgotten = [r.id for r in records[len(admitted) :]]
        if forgotten:
            await asyncio.shield(_forget(svc, user, forgotten))
    if len(admitted) < len(records) and not admitted:
        if answer["reason"] != "invalid":  # the platform's refusal costs the user nothing
            await svc.limiter.refund(user)
        refuse(answer, request, user)
    return admitted


async def _forget(svc: Services, user: str, eval_ids: list[str]) -> None:
    if len(eval_ids) == 1:  # a resend under its Idempotency-Key may have admitted it meanwhile
        with contextlib.suppress(Exception):
            if await svc.plane.admitted(eval_ids[0]):
                return  # it runs: its record stays
    try:
        await asyncio.to_thread(svc.store.delete_user_evals, user, eval_ids)
    except SQLAlchemyError as exc:  # left queued: reconciliation ends them as errors
        log.warning("could not forget %d unadmitted records: %s", len(eval_ids), exc)


_PENDING_FORGETS: set[asyncio.Task] = set()  # referenced until done (asyncio keeps weak refs)
FORGET_RETRY_S = 600.0  # longer than a store outage we expect to ride out


def _forget_when_back(svc: Services, user: str, eval_ids: list[str]) -> None:
    async def forget() -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(SQLAlchemyError), reraise=True,
            stop=stop_after_delay(FORGET_RETRY_S), wait=wait_exponential(min=0.5, max=15),
        )  # fmt: skip
        try:
            async for attempt in retrying:
                with attempt:
                    unknown = [i for i in eval_ids  # a resend under its key may run it now
                               if not await svc.plane.admitted(i)]  # fmt: skip
                    if unknown:
                        await asyncio.to_thread(svc.store.delete_user_evals, user, unknown)
        except Exception as exc:  # left queued: reconciliation ends them as errors
            log.warning("could not forget %d refused records: %s", len(eval_ids), exc)

    task = asyncio.get_running_loop().create_task(forget())
    _PENDING_FORGETS.add(task)
    task.add_done_callback(_PENDING_FORGETS.discard)
