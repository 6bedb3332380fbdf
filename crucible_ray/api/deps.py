"""The API's dependencies: the process's Services, and who is asking (typed aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crucible_ray.api.auth import (
    OPERATOR,
    AuthError,
    Principal,
    Verifier,
    bearer_token,
    verifier_of,
    verify_principal,
)
from crucible_ray.api.plane import ExecutionPlane
from crucible_ray.api.ratelimit import Limiter
from crucible_ray.audit import audit_refusal
from crucible_ray.metrics import metrics
from crucible_ray.settings import Settings
from crucible_ray.store import EvalStore


@dataclass
class Services:
    settings: Settings
    store: EvalStore
    plane: ExecutionPlane  # the dispatcher, or the queue plane (plane.py)
    limiter: Limiter

    @cached_property
    def verifier(self) -> Verifier:
        return verifier_of(self.settings)


# One Services per process, installed by the Serve replica. (Serve ships its own copy of the
# FastAPI app object to replicas, so app.state set on the module's `api` would not be seen.)
_services: Services | None = None


def install(installed: Services) -> None:
    global _services
    _services = installed


def services() -> Services:
    if _services is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "service is starting")
    return _services


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


# The OpenAPI security scheme (the docs' Authorize button). Errors stay ours (401, with why).
bearer_scheme = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="a token from `crucible-ray token`"
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def current_principal(
    request: Request, svc: Annotated[Services, Depends(services)], credentials: Credentials
) -> Principal:
    try:
        if credentials is not None:
            token = credentials.credentials
        else:  # missing, or not a bearer token: bearer_token says which
            token = bearer_token(request.headers.get("authorization"))
        return verify_principal(svc.verifier, token)
    except AuthError as exc:
        audit_refusal("auth_failed", reason=str(exc), client=client_address(request))
        metrics().inc("crucible_auth_failures", reason=exc.reason)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


def current_user(principal: Annotated[Principal, Depends(current_principal)]) -> str:
    return principal.user


def current_operator(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> str:
    if OPERATOR not in principal.roles:
        audit_refusal("forbidden", user=principal.user, client=client_address(request))
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an operator token")
    return principal.user


ServicesDep = Annotated[Services, Depends(services)]
UserDep = Annotated[str, Depends(current_user)]
OperatorDep = Annotated[str, Depends(current_operator)]
