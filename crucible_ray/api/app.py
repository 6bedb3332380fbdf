"""The HTTP API (FastAPI). Routes are thin: auth, limits and validation here; admission,
execution and results in the dispatcher; durable records in the store.

The binding contract is in the README (and /docs): 202/200 on submission, 401 with
``WWW-Authenticate: Bearer``, 404 for unknown or other users' ids, 409 when cancelling a
finished evaluation, 413 for code over the limit or an oversized body, 422 naming the field,
429 with ``Retry-After`` (rate limit, overload), 503 when no executor can take work.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from crucible_ray._version import __version__
from crucible_ray.analysis import warnings_for
from crucible_ray.api.auth import AuthError, bearer_token, verify_token
from crucible_ray.api.schemas import (
    Accepted,
    BatchAccepted,
    BatchStatus,
    BatchSubmission,
    Deleted,
    EvalSubmission,
    Health,
)
from crucible_ray.audit import audit_refusal
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.settings import Settings
from crucible_ray.store import EvalStore, NewEvaluation

WAIT_LIMIT_S = 60.0  # ?wait=true answers within this; the result stays available by id
REFUSAL_HEADER = "X-Crucible-Refusal"  # on 429: rate_limited or overloaded


@dataclass
class Services:
    settings: Settings
    store: EvalStore
    dispatcher: Any  # Ray actor handle
    limiter: Any  # Ray actor handle
    registry: CollectorRegistry
    requests: Counter


api = FastAPI(
    title="crucible-ray",
    version=__version__,
    description="Run untrusted Python, JavaScript and Go in hardened gVisor sandboxes.",
)


# One Services per process, installed by the Serve replica. (Serve ships its own copy of the
# FastAPI app object to replicas, so app.state set on this module's `api` would not be seen.)
_services: Services | None = None


def install(installed: Services) -> None:
    global _services
    _services = installed


def services() -> Services:
    if _services is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "service is starting")
    return _services


def current_user(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    try:
        token = bearer_token(request.headers.get("authorization"))
        return verify_token(svc.settings.secret, token, svc.settings.jwt_issuer)
    except AuthError as exc:
        audit_refusal("auth_failed", reason=str(exc), client=_client(request))
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[str, Depends(current_user)]


@api.middleware("http")
async def limit_body_size(request: Request, call_next: Any) -> Response:
    svc = services()
    limit = svc.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return JSONResponse({"detail": f"request body larger than {limit} bytes"}, 413)
    response = await call_next(request)
    svc.requests.labels(str(response.status_code)).inc()
    return response


@api.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status.HTTP_422_UNPROCESSABLE_ENTITY)


@api.post(
    "/api/eval",
    status_code=202,
    response_model=Accepted | EvalResult,
    responses={200: {"model": EvalResult}},
)
async def submit_eval(
    body: EvalSubmission,
    request: Request,
    svc: ServicesDep,
    user: UserDep,
    wait: Annotated[bool, Query(description="answer with the finished result")] = False,
) -> Any:
    _check_code_size(svc, [body])
    await _rate_limit(svc, user, request)
    eval_id = uuid.uuid4().hex
    (record,) = await _accept(svc, user, request, [(eval_id, body)], batch_id=None)
    if not wait:
        return JSONResponse(Accepted(id=eval_id).model_dump(), status.HTTP_202_ACCEPTED)
    answer = await svc.dispatcher.wait.remote(eval_id, WAIT_LIMIT_S)
    result = _live(answer, record.metadata, record.warnings)
    code = status.HTTP_200_OK if result.status.is_final else status.HTTP_202_ACCEPTED
    return JSONResponse(result.model_dump(mode="json"), code)


@api.get("/api/eval/{eval_id}", response_model=EvalResult)
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
        answer = await svc.dispatcher.wait.remote(eval_id, wait)
        if answer is not None:  # None: the dispatcher no longer knows it; the record stands
            return _live(answer, result.metadata, result.warnings)
    return result


@api.delete("/api/eval/{eval_id}", response_model=EvalResult)
async def cancel_eval(eval_id: str, svc: ServicesDep, user: UserDep) -> EvalResult:
    result = await asyncio.to_thread(svc.store.get, user, eval_id)
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evaluation")
    if result.status.is_final:
        raise HTTPException(status.HTTP_409_CONFLICT, f"evaluation already {result.status}")
    answer = await svc.dispatcher.cancel.remote(eval_id)
    if answer is None or not answer["cancelled"]:
        final = await svc.dispatcher.wait.remote(eval_id, 0)
        if final is not None and EvalStatus(final["status"]).is_final:
            raise HTTPException(status.HTTP_409_CONFLICT, f"evaluation already {final['status']}")
    final = await svc.dispatcher.wait.remote(eval_id, 10.0)
    return EvalResult.model_validate(final) if final else result


@api.post("/api/batch", status_code=202, response_model=BatchAccepted)
async def submit_batch(
    body: BatchSubmission, request: Request, svc: ServicesDep, user: UserDep
) -> BatchAccepted:
    if len(body.items) > svc.settings.max_batch_items:
        raise HTTPException(422, f"at most {svc.settings.max_batch_items} items per batch")
    _check_code_size(svc, body.items)
    # Room first: a batch refused for overload is not charged to the user's rate limit.
    stats = await svc.dispatcher.stats.remote()
    room = stats["admission_limit"] - stats["queued"] - stats["running"]
    if len(body.items) > room:
        raise _too_many(f"only {max(room, 0)} evaluations can be admitted now", 2.0)
    await _rate_limit(svc, user, request)  # a batch counts as one request
    batch_id = uuid.uuid4().hex
    pairs = [(uuid.uuid4().hex, item) for item in body.items]
    await _accept(svc, user, request, pairs, batch_id=batch_id)
    return BatchAccepted(batch_id=batch_id, ids=[eval_id for eval_id, _ in pairs])


@api.get("/api/batch/{batch_id}", response_model=BatchStatus)
async def batch_status(batch_id: str, svc: ServicesDep, user: UserDep) -> BatchStatus:
    counts = await asyncio.to_thread(svc.store.batch_counts, user, batch_id)
    if not counts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such batch")
    done = all(EvalStatus(s).is_final for s in counts)
    return BatchStatus(
        batch_id=batch_id, total=sum(counts.values()), counts=dict(counts), done=done
    )


@api.get(
    "/api/batch/{batch_id}/results",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def batch_results(batch_id: str, svc: ServicesDep, user: UserDep) -> StreamingResponse:
    counts = await asyncio.to_thread(svc.store.batch_counts, user, batch_id)
    if not counts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such batch")
    return StreamingResponse(
        _json_lines(svc.store.batch(user, batch_id)), media_type="application/x-ndjson"
    )


@api.get("/api/me/export", response_model=list[EvalResult])
async def export_my_data(svc: ServicesDep, user: UserDep) -> list[EvalResult]:
    return await asyncio.to_thread(lambda: list(svc.store.for_user(user)))


@api.delete("/api/me/data", response_model=Deleted)
async def erase_my_data(request: Request, svc: ServicesDep, user: UserDep) -> Deleted:
    deleted = await asyncio.to_thread(svc.store.delete_user, user)
    audit_refusal("data_erased", user=user, deleted=deleted, client=_client(request))
    return Deleted(deleted=deleted)


@api.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(svc: ServicesDep) -> Any:
    try:
        stats = await asyncio.wait_for(svc.dispatcher.stats.remote(), 5)
    except Exception:
        return JSONResponse(Health(status="unavailable", executors=0).model_dump(), 503)
    ready = sum(1 for e in stats["executors"] if e["ready"])
    health = Health(
        status="ok" if ready else "unavailable",
        executors=ready,
        running=stats["running"],
        queued=stats["queued"],
        admission_limit=stats["admission_limit"],
    )
    return JSONResponse(health.model_dump(), 200 if ready else 503)


@api.get("/metrics", response_class=Response)
async def metrics(svc: ServicesDep) -> Response:
    return Response(generate_latest(svc.registry), media_type=CONTENT_TYPE_LATEST)


# helpers ---------------------------------------------------------------------------------------


def _live(answer: dict[str, Any], metadata: Any, warnings: list[str]) -> EvalResult:
    """The dispatcher's view of an evaluation, with what only the record holds."""
    return EvalResult.model_validate(answer).model_copy(
        update={"metadata": metadata, "warnings": warnings}
    )


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _too_many(message: str, retry_after_s: float, reason: str = "overloaded") -> HTTPException:
    """429; the ``X-Crucible-Refusal`` header tells clients a rate limit from an overload."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        message,
        headers={"Retry-After": str(max(1, round(retry_after_s))), REFUSAL_HEADER: reason},
    )


def _check_code_size(svc: Services, items: list[EvalSubmission]) -> None:
    limit = svc.settings.sandbox.code_limit_bytes
    for item in items:
        if len(item.code.encode()) > limit:
            raise HTTPException(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"code exceeds {limit} bytes"
            )


async def _rate_limit(svc: Services, user: str, request: Request) -> None:
    retry_after = await svc.limiter.acquire.remote(user)
    if retry_after:
        audit_refusal("rate_limited", user=user, client=_client(request))
        limit = svc.settings.rate_limit_per_minute
        raise _too_many(f"rate limit of {limit}/minute", retry_after, "rate_limited")


async def _accept(
    svc: Services,
    user: str,
    request: Request,
    items: list[tuple[str, EvalSubmission]],
    batch_id: str | None,
) -> list[NewEvaluation]:
    """Record, then admit. Refused or not, every recorded evaluation ends with a result."""
    records = [
        NewEvaluation(
            id=eval_id,
            user=user,
            code=item.code,
            language=item.language,
            warnings=warnings_for(item.language, item.code),
            metadata=item.metadata,
            batch_id=batch_id,
            batch_index=index if batch_id else None,
        )
        for index, (eval_id, item) in enumerate(items)
    ]
    await asyncio.to_thread(svc.store.add, records)
    client = _client(request)
    for index, (eval_id, item) in enumerate(items):
        request_body = item.model_dump(exclude={"metadata"})
        context = {
            "user": user,
            "client": client,
            "code_sha256": hashlib.sha256(item.code.encode()).hexdigest(),
        }
        answer = await svc.dispatcher.submit.remote(eval_id, request_body, context)
        if answer["accepted"]:
            continue
        # Not admitted after all: what is recorded and not admitted is deleted (single) or
        # ends as an error result (the rest of a batch), never left queued forever.
        if batch_id is None:
            await asyncio.to_thread(svc.store.delete_user_eval, user, eval_id)
            if answer["reason"] != "invalid":  # the platform's refusal costs the user nothing
                await svc.limiter.refund.remote(user)
        else:
            for late_id, late in items[index:]:
                await asyncio.to_thread(
                    svc.store.finish,
                    EvalResult(
                        id=late_id,
                        status=EvalStatus.ERROR,
                        language=late.language,
                        error=f"not admitted: {answer['message']}",
                    ),
                )
            return records
        _refuse(answer, request, user)
    return records


def _refuse(answer: dict[str, Any], request: Request, user: str) -> None:
    audit_refusal(f"refused_{answer['reason']}", user=user, client=_client(request))
    if answer["reason"] == "overloaded":
        raise _too_many(answer["message"], answer["retry_after_s"] or 1.0)
    if answer["reason"] == "invalid":
        field = ["body", answer["field"]] if answer.get("field") else ["body"]
        raise HTTPException(422, [{"loc": field, "msg": answer["message"], "type": "value_error"}])
    raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, answer["message"])


async def _json_lines(results: Any) -> AsyncIterator[bytes]:
    iterator = iter(results)
    while True:
        chunk = await asyncio.to_thread(lambda: list(itertools.islice(iterator, 200)))
        if not chunk:
            return
        yield "".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in chunk).encode()


def make_services(settings: Settings, dispatcher: Any, limiter: Any) -> Services:
    registry = CollectorRegistry()
    requests = Counter(
        "crucible_http_requests", "HTTP requests by status", ["status"], registry=registry
    )
    return Services(settings, EvalStore(settings.db_url), dispatcher, limiter, registry, requests)
