"""JWT bearer tokens: issued by ``crucible-ray token``, checked on every API request.

Two ways to sign, never both at once on a server:

* **EdDSA** (Ed25519, recommended on a cluster): the issuer holds the private key
  (``CRUCIBLE_JWT_PRIVATE_KEY``); ingress replicas hold only public keys
  (``CRUCIBLE_JWT_PUBLIC_KEYS``, a JWKS) and so cannot mint tokens. The key is chosen by the
  token's ``kid`` (the RFC 7638 thumbprint of its public key), so keys can be rotated by
  publishing the new one beside the old.
* **HS256** with a shared secret (the default on one machine).

Every token names its audience (``aud``), carries ``iat``/``exp`` whose span the server caps
(``jwt_max_ttl_s``), and is refused before its ``nbf``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

if TYPE_CHECKING:
    from crucible_ray.settings import Settings

HS256, EDDSA = "HS256", "EdDSA"
USER_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
OPERATOR = "operator"  # the role that may see the dashboard (every user's recent activity)
ROLES = frozenset({OPERATOR})
REQUIRED_CLAIMS = ["sub", "exp", "iat", "iss", "aud"]


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


@dataclass(frozen=True)
class TokenRules:
    """What every token must name, and its longest allowed lifetime."""

    issuer: str = "crucible-ray"
    audience: str = "crucible-ray"
    max_ttl_s: int = 86400


@dataclass(frozen=True)
class Signer:
    key: str | Ed25519PrivateKey
    rules: TokenRules = field(default_factory=TokenRules)

    @property
    def algorithm(self) -> str:
        return HS256 if isinstance(self.key, str) else EDDSA


@dataclass(frozen=True)
class Verifier:
    """An HS256 secret, or Ed25519 public keys by ``kid`` (then HS256 is refused)."""

    secret: str | None = None
    public_keys: Mapping[str, Ed25519PublicKey] | None = None
    rules: TokenRules = field(default_factory=TokenRules)


def rules_of(settings: Settings) -> TokenRules:
    return TokenRules(settings.jwt_issuer, settings.jwt_audience, settings.jwt_max_ttl_s)


def signer_of(settings: Settings) -> Signer:
    """The issuer's side: the private key if configured, else the HS256 secret."""
    if settings.jwt_private_key is not None:
        key = load_private_key(settings.jwt_private_key.get_secret_value())
        return Signer(key, rules_of(settings))
    return Signer(settings.secret, rules_of(settings))


def verifier_of(settings: Settings) -> Verifier:
    """The server's side: public keys if configured (no secret is read), else the secret."""
    if settings.jwt_public_keys is not None:
        return Verifier(public_keys=public_key_set(settings.jwt_public_keys),
                        rules=rules_of(settings))  # fmt: skip
    return Verifier(secret=settings.secret, rules=rules_of(settings))


def issue_token(signer: Signer, user: str, ttl_s: int, roles: Iterable[str] = ()) -> str:
    if not USER_PATTERN.match(user):
        raise ValueError("user names are 1-128 characters of letters, digits and ._@-")
    unknown = set(roles) - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {sorted(ROLES)}")
    if not 0 < ttl_s <= signer.rules.max_ttl_s:
        raise ValueError(f"the lifetime must be 1-{signer.rules.max_ttl_s} s (the server's cap)")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user, "iat": now, "nbf": now, "exp": now + ttl_s,
                              "iss": signer.rules.issuer, "aud": signer.rules.audience}  # fmt: skip
    if roles:
        claims["roles"] = sorted(set(roles))
    headers = None
    if isinstance(signer.key, Ed25519PrivateKey):
        headers = {"kid": key_id(signer.key.public_key())}
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers=headers)


def verify_principal(verifier: Verifier, token: str) -> Principal:
    """Who the token names, or AuthError. One algorithm only, by configuration (no ``none``,
    no key confusion); audience, issuer, expiry, ``nbf`` and the lifetime cap enforced."""
    rules = verifier.rules
    try:
        key: Any
        if verifier.public_keys is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            if not isinstance(kid, str) or kid not in verifier.public_keys:
                raise AuthError("token signed with an unknown key")
            key, algorithm = verifier.public_keys[kid], EDDSA
        else:
            key, algorithm = verifier.secret, HS256
        claims = jwt.decode(token, key, algorithms=[algorithm], issuer=rules.issuer,
                            audience=rules.audience,
                            options={"require": REQUIRED_CLAIMS})  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired", "expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(lifetime, int | float) or lifetime > rules.max_ttl_s:
        raise AuthError(f"token lifetime over the server's limit of {rules.max_ttl_s} s")
    user, roles = claims["sub"], claims.get("roles", [])
    if not isinstance(user, str) or not USER_PATTERN.match(user):
        raise AuthError("invalid token subject")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("invalid token roles")
    return Principal(user, frozenset(roles) & ROLES)


def verify_token(verifier: Verifier, token: str) -> str:
    """The token's user, or AuthError."""
    return verify_principal(verifier, token).user


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("missing Authorization header", "missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("expected 'Authorization: Bearer <token>'", "missing")
    return token.strip()


# Ed25519 keys -------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 thumbprint: the same key always gets the same ``kid``."""
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("the JWT private key is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the JWT private key must be an Ed25519 key")
    return key


def public_jwks(private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The JWKS that verifies tokens of ``private_key`` (for ``CRUCIBLE_JWT_PUBLIC_KEYS``)."""
    public = private_key.public_key()
    jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {"keys": [{**jwk, "kid": key_id(public), "alg": EDDSA, "use": "sig"}]}


def public_key_set(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Ed25519 public keys by ``kid`` from a JWKS; ValueError if any key is not one."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError('the JWT public keys must be a JWKS: {"keys": [...]}, not empty')
    found: dict[str, Ed25519PublicKey] = {}
    for entry in keys:
        try:
            key = jwt.PyJWK.from_dict(entry).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError):
            raise ValueError("a JWT public key is not a valid JWK") from None
        kid = entry.get("kid")
        if not isinstance(key, Ed25519PublicKey) or not isinstance(kid, str) or not kid:
            raise ValueError("each JWT public key must be an Ed25519 JWK with a kid")
        found[kid] = key
    return found


def generate_private_key() -> tuple[str, dict[str, Any]]:
    """A new Ed25519 key pair: the private key as PEM, the public one as a JWKS."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    return pem, public_jwks(key)
