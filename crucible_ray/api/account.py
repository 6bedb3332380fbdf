"""The caller's own data: export everything, erase everything."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from crucible_ray.api.deps import ServicesDep, UserDep, client_address
from crucible_ray.api.schemas import Deleted
from crucible_ray.audit import audit_refusal
from crucible_ray.models import EvalResult

router = APIRouter(tags=["account"])


@router.get("/api/me/export", response_model=list[EvalResult])
async def export_my_data(svc: ServicesDep, user: UserDep) -> list[EvalResult]:
    return await asyncio.to_thread(lambda: list(svc.store.for_user(user)))


@router.delete("/api/me/data", response_model=Deleted)
async def erase_my_data(request: Request, svc: ServicesDep, user: UserDep) -> Deleted:
    deleted = await asyncio.to_thread(svc.store.delete_user, user)
    audit_refusal("data_erased", user=user, deleted=deleted, client=client_address(request))
    return Deleted(deleted=deleted)
