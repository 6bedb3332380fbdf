"""The caller's own data: export everything, erase everything."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from crucible_ray.api.deps import ServicesDep, UserDep, client_address
from crucible_ray.api.schemas import Deleted
from crucible_ray.api.streams import first_chunk, json_array
from crucible_ray.audit import audit_refusal
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult

router = APIRouter(tags=["account"])


@router.get("/api/me/export", response_model=list[EvalResult | JudgeResult],
            response_class=StreamingResponse)  # fmt: skip
async def export_my_data(svc: ServicesDep, user: UserDep) -> StreamingResponse:
    """Every record of the caller (evaluations and judgings), oldest first: one JSON array,
    streamed a page at a time."""
    first, rest = await first_chunk(svc.store.for_user(user))
    return StreamingResponse(json_array(first, rest), media_type="application/json")


@router.delete("/api/me/data", response_model=Deleted)
async def erase_my_data(request: Request, svc: ServicesDep, user: UserDep) -> Deleted:
    deleted = await asyncio.to_thread(svc.store.delete_user, user)
    audit_refusal("data_erased", user=user, deleted=deleted, client=client_address(request))
    return Deleted(deleted=deleted)
