"""The HTTP API (FastAPI): the app, its middleware and error format, and its routers.
Routes are thin: auth, limits and validation in the API; admission, execution and results in
the execution plane (``plane.py``); durable records in the store.

The binding contract is in the README (and /docs): 202/200 on submission, 401 with
``WWW-Authenticate: Bearer``, 403 for a missing role, 404 for unknown or other users' ids, 409
when cancelling a finished evaluation, 411 for a body without Content-Length, 413 for code over
the limit or an oversized body, 422
naming the field, 429 with ``Retry-After`` (rate limit, overload), 503 when no executor can take
work or the result store cannot (``Retry-After`` too).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from crucible_ray._version import __version__
from crucible_ray.api import account, docs, evaluations, judging, operations, testsets
from crucible_ray.api.admission import store_unavailable
from crucible_ray.api.deps import Services, install, services
from crucible_ray.api.plane import QUEUE, DispatcherPlane, ExecutionPlane, QueuePlane
from crucible_ray.api.ratelimit import ActorLimiter, Limiter, StoreLimiter, get_limiter
from crucible_ray.audit import audit_to_file
from crucible_ray.execution.client import get_dispatcher
from crucible_ray.metrics import metrics
from crucible_ray.settings import Settings
from crucible_ray.store import EvalStore

__all__ = ["Services", "api", "install", "make_services"]

api = FastAPI(
    title="crucible-ray",
    version=__version__,
    description="Run untrusted programs (Python, JavaScript, Go, C, C++, Rust, Java) in hardened"
    " gVisor sandboxes.",
    docs_url=None,  # FastAPI's pages load Swagger UI from a CDN; docs.py serves it from here
    redoc_url=None,
)
api.include_router(evaluations.router)
api.include_router(judging.router)
api.include_router(testsets.router)
api.include_router(account.router)
api.include_router(operations.router)
api.include_router(docs.router)


@api.middleware("http")
async def limit_body_size(request: Request, call_next: Any) -> Response:
    svc = services()
    limit = svc.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        response: Response = JSONResponse(
            {"detail": f"request body larger than {limit} bytes"}, 413
        )
    elif length is None and request.method in ("POST", "PUT", "PATCH"):
        # A chunked body would be read whole before anything could count it.
        response = JSONResponse({"detail": "a Content-Length header is required"}, 411)
    else:
        response = await call_next(request)
    route = request.scope.get("route")  # the template, never the raw path (cardinality)
    metrics().inc("crucible_http_requests", method=request.method,
                  route=getattr(route, "path", "unmatched"),
                  code=str(response.status_code))  # fmt: skip
    return response


@api.middleware("http")
async def security_headers(request: Request, call_next: Any) -> Response:
    """A Content-Security-Policy on every response: pages set their own (self only); anything
    else (JSON) may load nothing and be framed by nobody."""
    response: Response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", docs.API_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@api.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status.HTTP_422_UNPROCESSABLE_ENTITY)


@api.exception_handler(SQLAlchemyError)
async def store_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
    """Reads and writes the store cannot serve now (down, disk full): 503, never a 500."""
    refusal = store_unavailable(exc)
    return JSONResponse({"detail": refusal.detail}, refusal.status_code, refusal.headers)


def make_services(settings: Settings) -> Services:
    """The replica's services on the plane the settings name; the dispatcher plane's actors
    (the Dispatcher, the RateLimiter) are found or started."""
    audit_to_file(settings.state_dir)  # the state dir made 0700, the audit file 0600
    store = EvalStore(settings.db_url)
    plane: ExecutionPlane
    limiter: Limiter
    if settings.execution_plane == QUEUE:
        plane = QueuePlane(store, settings.queue_key_bytes, settings.dispatcher)
        limiter = StoreLimiter(store, settings.rate_limit_per_minute)
    else:
        plane = DispatcherPlane(get_dispatcher(settings.dispatcher))
        limiter = ActorLimiter(get_limiter(settings.rate_limit_per_minute))
    return Services(settings, store, plane, limiter)
