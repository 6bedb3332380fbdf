import time

import jwt
import pytest

from crucible_ray.api.auth import (
    OPERATOR,
    AuthError,
    Principal,
    bearer_token,
    issue_token,
    verify_principal,
    verify_token,
)
from crucible_ray.settings import Settings, check_secret

SECRET = "k3y-for-tests-only-Qx8vN2mP5rT9wZ1bC4dF7gH0"


def test_round_trip_and_expiry():
    token = issue_token(SECRET, "alice", ttl_s=60, issuer="crucible-ray")
    assert verify_token(SECRET, token, "crucible-ray") == "alice"
    expired = jwt.encode({"sub": "a", "iat": 1, "exp": int(time.time()) - 5, "iss": "crucible-ray"},
                         SECRET, algorithm="HS256")  # fmt: skip
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, expired, "crucible-ray")


@pytest.mark.parametrize("token", [
    jwt.encode({"sub": "a", "iat": 1, "exp": 2**40, "iss": "crucible-ray"}, "wrong" * 8, "HS256"),
    jwt.encode({"sub": "a", "iat": 1, "exp": 2**40, "iss": "crucible-ray"}, None, "none"),
    jwt.encode({"sub": "a", "iat": 1, "exp": 2**40, "iss": "other"}, SECRET, "HS256"),
    jwt.encode({"sub": "a", "iat": 1, "iss": "crucible-ray"}, SECRET, "HS256"),  # no expiry
    "not.a.jwt",
])  # fmt: skip
def test_forged_or_malformed_tokens_are_refused(token):
    with pytest.raises(AuthError):
        verify_token(SECRET, token, "crucible-ray")


def test_bearer_header_parsing():
    assert bearer_token("Bearer abc") == "abc"
    for header in (None, "", "Basic abc", "Bearer ", "abc"):
        with pytest.raises(AuthError):
            bearer_token(header)


@pytest.mark.parametrize("secret", ["", "secret", "changeme", "a" * 40, "short"])
def test_weak_or_well_known_secrets_are_refused(secret):
    with pytest.raises(ValueError):
        check_secret(secret)


def test_generated_secret_file_is_private_and_stable(tmp_path):
    first = Settings(state_dir=tmp_path).secret
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    assert Settings(state_dir=tmp_path).secret == first and len(first) >= 32
    (tmp_path / "jwt-secret").chmod(0o644)
    with pytest.raises(ValueError, match="600"):
        Settings(state_dir=tmp_path).secret  # noqa: B018


def test_roles_travel_in_the_token_and_only_known_ones_count():
    plain = verify_principal(SECRET, issue_token(SECRET, "ann", 60, "crucible-ray"), "crucible-ray")
    assert plain == Principal("ann", frozenset())
    operator = issue_token(SECRET, "ops", 60, "crucible-ray", [OPERATOR])
    assert verify_principal(SECRET, operator, "crucible-ray").roles == {OPERATOR}
    with pytest.raises(ValueError, match="unknown roles"):
        issue_token(SECRET, "ops", 60, "crucible-ray", ["root"])
    now = int(time.time())
    claims = {"sub": "x", "iat": now, "exp": now + 60, "iss": "crucible-ray"}
    smuggled = jwt.encode({**claims, "roles": ["operator", "root"]}, SECRET, "HS256")
    assert verify_principal(SECRET, smuggled, "crucible-ray").roles == {OPERATOR}
    with pytest.raises(AuthError, match="roles"):
        verify_principal(SECRET, jwt.encode({**claims, "roles": "operator"}, SECRET, "HS256"),
                         "crucible-ray")  # fmt: skip


def test_auth_errors_say_why_for_the_metrics():
    with pytest.raises(AuthError) as missing:
        bearer_token(None)
    assert missing.value.reason == "missing"
    expired = jwt.encode({"sub": "a", "iat": 1, "exp": 2, "iss": "crucible-ray"}, SECRET, "HS256")
    with pytest.raises(AuthError) as late:
        verify_token(SECRET, expired, "crucible-ray")
    assert late.value.reason == "expired"
