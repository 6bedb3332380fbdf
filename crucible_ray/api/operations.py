"""Operations: the health check, and the live dashboard (a static page and its data)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response

from crucible_ray.api.deps import OperatorDep, Services, ServicesDep
from crucible_ray.api.schemas import Health
from crucible_ray.models import utcnow
from crucible_ray.store.activity import activity

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
STATIC = resources.files("crucible_ray.api") / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
# Everything the page needs is served from here: no CDN, no inline script, nothing else.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class HealthCache:
    """The last health answer, for ``HEALTH_TTL_S``: ``/healthz`` is unauthenticated, so each
    hit must not cost a dispatcher call; one call at a time refreshes it for everyone."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._answer: tuple[dict[str, Any], int] | None = None
        self._at = -math.inf
        self._lock = asyncio.Lock()

    async def get(self, svc: Services) -> tuple[dict[str, Any], int]:
        async with self._lock:  # concurrent hits on an expired answer wait for one call
            if self._answer is None or time.monotonic() - self._at >= self.ttl_s:
                self._answer = await _health(svc)
                self._at = time.monotonic()
            return self._answer


async def _health(svc: Services) -> tuple[dict[str, Any], int]:
    try:
        stats = await asyncio.wait_for(svc.plane.stats(), 5)
    except Exception:
        return Health(status="unavailable", executors=0).model_dump(), 503
    ready = sum(1 for e in stats["executors"] if e["ready"])
    health = Health(
        status="ok" if ready else "unavailable",
        executors=ready,
        running=stats["running"],
        queued=stats["queued"],
        admission_limit=stats["admission_limit"],
    )
    return health.model_dump(), 200 if ready else 503


HEALTH_TTL_S = 1.0
health_cache = HealthCache(HEALTH_TTL_S)


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(svc: ServicesDep) -> Any:
    body, code = await health_cache.get(svc)
    return JSONResponse(body, code)


@router.get("/dashboard", response_class=Response, include_in_schema=False)
async def dashboard_page() -> Response:
    html = (STATIC / "dashboard.html").read_text()
    return Response(html, media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/dashboard/{asset}", response_class=Response, include_in_schema=False)
async def dashboard_asset(asset: str) -> Response:
    if asset not in ASSETS:
        return Response("not found", 404)
    return Response((STATIC / asset).read_text(), media_type=ASSETS[asset],
                    headers=SECURITY_HEADERS)  # fmt: skip


@router.get("/api/dashboard")
async def dashboard_data(
    svc: ServicesDep,
    operator: OperatorDep,
    window_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 15,
) -> dict[str, Any]:
    """Live state for operators: the dispatcher's view (queue, capacity, executors, counters
    since it started) and the records' (throughput, latency, outcomes, recent evaluations)."""
    try:
        stats = await asyncio.wait_for(svc.plane.stats(), 5)
    except Exception as exc:  # a hung or restarting dispatcher must not hold the page
        log.warning("dashboard: the dispatcher did not answer: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "the dispatcher did not answer; try again") from None  # fmt: skip
    window = timedelta(minutes=window_minutes)
    records = await asyncio.to_thread(activity, svc.store, window)
    return {"generated_at": utcnow().isoformat(), "dispatcher": stats, **records}
