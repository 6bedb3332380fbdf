"""JWT bearer tokens: issued by ``crucible-ray token``, checked on every API request."""

from __future__ import annotations

import re
import time

import jwt

ALGORITHM = "HS256"
USER_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")


class AuthError(Exception):
    """Missing, malformed, expired or wrongly signed credentials (HTTP 401)."""


def issue_token(secret: str, user: str, ttl_s: int, issuer: str) -> str:
    if not USER_PATTERN.match(user):
        raise ValueError("user names are 1-128 characters of letters, digits and ._@-")
    now = int(time.time())
    claims = {"sub": user, "iat": now, "nbf": now, "exp": now + ttl_s, "iss": issuer}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, issuer: str) -> str:
    """The token's user, or AuthError. Only HS256 is accepted (no ``none``, no key confusion)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=issuer,
                            options={"require": ["sub", "exp", "iat", "iss"]})  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    user = claims["sub"]
    if not isinstance(user, str) or not USER_PATTERN.match(user):
        raise AuthError("invalid token subject")
    return user


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("missing Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("expected 'Authorization: Bearer <token>'")
    return token.strip()
