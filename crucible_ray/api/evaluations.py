"""Routes that submit, follow and cancel evaluations and batches."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse

from crucible_ray.api.accept import accept
from crucible_ray.api.admission import (
    Duplicate,
    check_limits,
    live,
    rate_limit,
    too_many,
)
from crucible_ray.api.deps import Services, ServicesDep, UserDep
from crucible_ray.api.idempotency import (
    KeyDep,
    admit_batch,
    derived_id,
    replay,
    request_digest,
)
from crucible_ray.api.schemas import (
    Accepted,
    BatchAccepted,
    BatchStatus,
    BatchSubmission,
    EvalSubmission,
)
from crucible_ray.api.streams import first_chunk, json_lines
from crucible_ray.api.waits import long_polls
from crucible_ray.catalog import languages
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult, EvalStatus, LanguageInfo

WAIT_LIMIT_S = 60.0  # ?wait answers within this; the result stays available by id
router = APIRouter(tags=["evaluations"])


def links(parameter: str, field: str, **operations: str) -> dict[str, Any]:
    """OpenAPI links from an answer to the calls that take its id (fuzzers follow them)."""
    return {"links": {name: {"operationId": operation_id,
                             "parameters": {parameter: f"$response.body#/{field}"}}
                      for name, operation_id in operations.items()}}  # fmt: skip


EVAL_LINKS = links("eval_id", "id", GetEval="get_eval_api_eval__eval_id__get",
                    CancelEval="cancel_eval_api_eval__eval_id__delete")  # fmt: skip
BATCH_LINKS = links("batch_id", "batch_id", GetBatch="batch_status_api_batch__batch_id__get",
                     GetBatchResults="batch_results_api_batch__batch_id__results_get")  # fmt: skip
WAIT_REFUSED: dict[int | str, dict[str, Any]] = {
    429: {"description": "rate limit, overload or too many waits (see X-Crucible-Refusal)"}
}


@router.post(
    "/api/eval",
    status_code=202,
    response_model=Accepted | EvalResult,
    responses={202: EVAL_LINKS, 200: {"model": EvalResult, **EVAL_LINKS}, **WAIT_REFUSED},
)
async def submit_eval(
    body: EvalSubmission,
    request: Request,
    svc: ServicesDep,
    user: UserDep,
    key: KeyDep,
    wait: Annotated[bool, Query(description="answer with the finished result")] = False,
) -> Any:
    # A bounded number of waits per user, refused before anything is recorded or charged.
    limit = svc.settings.waits_per_user
    with long_polls.hold(user, limit) if wait else contextlib.nullcontext():
        return await _submit_eval(body, request, svc, user, key, wait)


async def _submit_eval(
    body: EvalSubmission, request: Request, svc: ServicesDep, user: str, key: str | None,
    wait: bool,
) -> Any:  # fmt: skip
    check_limits(svc, [body])
    eval_id = derived_id(user, key) if key else uuid.uuid4().hex
    earlier = await replay(svc, user, request, eval_id, body) if key else None
    if earlier is None:
        await rate_limit(svc, user, request)
        try:
            (record,) = await accept(svc, user, request, [(eval_id, body)], batch_id=None)
            earlier = EvalResult(id=eval_id, status=EvalStatus.QUEUED, language=body.language,
                                 image=record.image, metadata=record.metadata,
                                 warnings=record.warnings)  # fmt: skip
        except Duplicate:  # a twin request with this key recorded it a moment before
            earlier = await replay(svc, user, request, eval_id, body)
            if earlier is None:
                raise too_many("a request with this Idempotency-Key was refused", 1.0) from None
    return await admitted_answer(
        svc, user, earlier, wait, lambda answer: live(answer, earlier.metadata, earlier.warnings)
    )


async def admitted_answer(svc: Services, user: str, earlier: EvalResult | JudgeResult,
                          wait: bool,
                          to_result: Callable[[dict[str, Any]], EvalResult | JudgeResult],
                          ) -> JSONResponse:  # fmt: skip
    """The answer to an admitted submission (or a replay of one): 202 with its id, or with
    ``wait`` its final result (202 with what is known when it is not final in time)."""
    if not wait:
        accepted = Accepted(id=earlier.id, status=earlier.status.value)
        return JSONResponse(accepted.model_dump(), status.HTTP_202_ACCEPTED)
    if earlier.status.is_final:  # a replay of one that has finished
        return JSONResponse(earlier.model_dump(mode="json"), status.HTTP_200_OK)
    answer = await svc.plane.wait(user, earlier.id, WAIT_LIMIT_S)
    if answer is None:  # the dispatcher restarted meanwhile: the record has what is known
        return JSONResponse(Accepted(id=earlier.id).model_dump(), status.HTTP_202_ACCEPTED)
    result = to_result(answer)
    code = status.HTTP_200_OK if result.status.is_final else status.HTTP_202_ACCEPTED
    return JSONResponse(result.model_dump(mode="json"), code)


@router.get("/api/eval/{eval_id}", response_model=EvalResult, responses=WAIT_REFUSED)
async def get_eval(
    eval_id: str,
    svc: ServicesDep,
    user: UserDep,
    wait: Annotated[
        float, Query(ge=0, le=WAIT_LIMIT_S, description="seconds to wait for a final result")
    ] = 0.0,
) -> EvalResult:
    result = await asyncio.to_thread(svc.store.get, user, eval_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evaluation")
    if wait and not result.status.is_final:  # long poll: answer as soon as it finishes
        with long_polls.hold(user, svc.settings.waits_per_user):
            answer = await svc.plane.wait(user, eval_id, wait)
        if answer is not None:  # None: the dispatcher no longer knows it; the record stands
            return live(answer, result.metadata, result.warnings)
    return result


@router.delete("/api/eval/{eval_id}", response_model=EvalResult)
async def cancel_eval(eval_id: str, svc: ServicesDep, user: UserDep) -> EvalResult:
    result = await asyncio.to_thread(svc.store.get, user, eval_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evaluation")
    if result.status.is_final:
        raise HTTPException(status.HTTP_409_CONFLICT, f"evaluation already {result.status}")
    if not await svc.plane.cancel(user, eval_id):
        final = await svc.plane.wait(user, eval_id, 0)
        if final is not None and EvalStatus(final["status"]).is_final:
            raise HTTPException(status.HTTP_409_CONFLICT, f"evaluation already {final['status']}")
    final = await svc.plane.wait(user, eval_id, 10.0)
    return EvalResult.model_validate(final) if final else result


@router.post("/api/batch", status_code=202, response_model=BatchAccepted,
             responses={202: BATCH_LINKS})  # fmt: skip
async def submit_batch(
    body: BatchSubmission, request: Request, svc: ServicesDep, user: UserDep, key: KeyDep
) -> BatchAccepted:
    check_limits(svc, body.items)
    batch_id = derived_id(user, key, "batch") if key else uuid.uuid4().hex
    ids = await admit_batch(svc, user, request, key, batch_id, body.items, request_digest(body))
    return BatchAccepted(batch_id=batch_id, ids=ids)


@router.get("/api/batch/{batch_id}", response_model=BatchStatus)
async def batch_status(batch_id: str, svc: ServicesDep, user: UserDep) -> BatchStatus:
    counts = await asyncio.to_thread(svc.store.batch_counts, user, batch_id)
    if not counts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such batch")
    done = all(EvalStatus(s).is_final for s in counts)
    return BatchStatus(
        batch_id=batch_id, total=sum(counts.values()), counts=dict(counts), done=done
    )


@router.get(
    "/api/batch/{batch_id}/results",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def batch_results(batch_id: str, svc: ServicesDep, user: UserDep) -> StreamingResponse:
    counts = await asyncio.to_thread(svc.store.batch_counts, user, batch_id)
    if not counts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such batch")
    first, rest = await first_chunk(svc.store.batch(user, batch_id))
    return StreamingResponse(json_lines(first, rest), media_type="application/x-ndjson")


@router.get("/api/languages", response_model=list[LanguageInfo])
async def list_languages(svc: ServicesDep, _user: UserDep) -> list[LanguageInfo]:
    """Every language this service runs: its image, the packages' versions (when the image is
    on this node), how it compiles and each stage's limits under the policy in force."""
    return languages(svc.settings.sandbox)
