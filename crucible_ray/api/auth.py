"""JWT bearer tokens: issued by ``crucible-ray token``, checked on every API request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
USER_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
OPERATOR = "operator"  # the role that may see the dashboard (every user's recent activity)
ROLES = frozenset({OPERATOR})


class AuthError(Exception):
    """Missing, malformed, expired or wrongly signed credentials (HTTP 401).

    ``reason`` is one of ``missing``, ``expired``, ``invalid`` (a metrics tag)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[str] = frozenset()


def issue_token(secret: str, user: str, ttl_s: int, issuer: str,
                roles: Iterable[str] = ()) -> str:  # fmt: skip
    if not USER_PATTERN.match(user):
        raise ValueError("user names are 1-128 characters of letters, digits and ._@-")
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
    now = int(time.time())
    claims = {"sub": user, "iat": now, "nbf": now, "exp": now + ttl_s, "iss": issuer}
    if roles:
        claims["roles"] = sorted(set(roles))
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_principal(secret: str, token: str, issuer: str) -> Principal:
    """Who the token names, or AuthError. Only HS256 is accepted (no ``none``, no key
    confusion)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=issuer,
                            options={"require": ["sub", "exp", "iat", "iss"]})  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired", "expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    user, roles = claims["sub"], claims.get("roles", [])
    if not isinstance(user, str) or not USER_PATTERN.match(user):
        raise AuthError("invalid token subject")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("invalid token roles")
    return Principal(user, frozenset(roles) & ROLES)


def verify_token(secret: str, token: str, issuer: str) -> str:
    """The token's user, or AuthError."""
    return verify_principal(secret, token, issuer).user


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("missing Authorization header", "missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("expected 'Authorization: Bearer <token>'", "missing")
    return token.strip()
