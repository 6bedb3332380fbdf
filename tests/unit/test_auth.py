import time

import jwt
import pytest

from crucible_ray.api.auth import (
    OPERATOR,
    AuthError,
    Principal,
    Signer,
    TokenRules,
    Verifier,
    bearer_token,
    generate_private_key,
    issue_token,
    load_private_key,
    public_key_set,
    signer_of,
    verifier_of,
    verify_principal,
    verify_token,
)
from crucible_ray.settings import Settings, check_secret

SECRET = "k3y-for-tests-only-Qx8vN2mP5rT9wZ1bC4dF7gH0"
SIGNER, VERIFIER = Signer(SECRET), Verifier(SECRET)


def claims(**overrides) -> dict:
    now = int(time.time())
    return {"sub": "a", "iat": now, "exp": now + 60, "iss": "crucible-ray", "aud": "crucible-ray",
            **overrides}  # fmt: skip


def test_round_trip_and_expiry():
    token = issue_token(SIGNER, "alice", ttl_s=60)
    assert verify_token(VERIFIER, token) == "alice"
    expired = jwt.encode(claims(iat=1, exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="expired"):
        verify_token(VERIFIER, expired)


@pytest.mark.parametrize("token", [
    jwt.encode(claims(), "wrong" * 8, "HS256"),
    jwt.encode(claims(), None, "none"),
    jwt.encode(claims(iss="other"), SECRET, "HS256"),
    jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, "HS256"),  # no expiry
    "not.a.jwt",
])  # fmt: skip
def test_forged_or_malformed_tokens_are_refused(token):
    with pytest.raises(AuthError):
        verify_token(VERIFIER, token)


def test_the_audience_is_required_and_must_be_ours():
    without = jwt.encode({k: v for k, v in claims().items() if k != "aud"}, SECRET, "HS256")
    with pytest.raises(AuthError, match='"aud"'):
        verify_token(VERIFIER, without)
    with pytest.raises(AuthError, match="Audience"):
        verify_token(VERIFIER, jwt.encode(claims(aud="another-service"), SECRET, "HS256"))
    assert verify_token(VERIFIER, jwt.encode(claims(), SECRET, "HS256")) == "a"


def test_the_server_caps_the_lifetime():
    rules = TokenRules(max_ttl_s=3600)
    now = int(time.time())
    too_long = jwt.encode(claims(iat=now, exp=now + 3601), SECRET, "HS256")
    with pytest.raises(AuthError, match="lifetime"):
        verify_token(Verifier(SECRET, rules=rules), too_long)
    at_cap = jwt.encode(claims(iat=now, exp=now + 3600), SECRET, "HS256")
    assert verify_token(Verifier(SECRET, rules=rules), at_cap) == "a"
    with pytest.raises(ValueError, match="1-3600"):
        issue_token(Signer(SECRET, rules), "a", 3601)


def test_not_before_is_honoured():
    early = jwt.encode(claims(nbf=int(time.time()) + 300, exp=int(time.time()) + 600), SECRET,
                       "HS256")  # fmt: skip
    with pytest.raises(AuthError, match="not yet valid"):
        verify_token(VERIFIER, early)


def test_eddsa_tokens_verify_with_the_public_key_only_chosen_by_kid():
    old_pem, old_jwks = generate_private_key()
    new_pem, new_jwks = generate_private_key()
    both = {"keys": old_jwks["keys"] + new_jwks["keys"]}  # rotation: old and new published
    verifier = Verifier(public_keys=public_key_set(both))
    for pem in (old_pem, new_pem):
        assert (
            verify_token(verifier, issue_token(Signer(load_private_key(pem)), "eve", 60)) == "eve"
        )
    token = issue_token(Signer(load_private_key(new_pem)), "eve", 60)
    assert jwt.get_unverified_header(token)["kid"] == new_jwks["keys"][0]["kid"]
    # Retired: only the new key is published; tokens of the old one are refused.
    retired = Verifier(public_keys=public_key_set(new_jwks))
    with pytest.raises(AuthError, match="unknown key"):
        verify_token(retired, issue_token(Signer(load_private_key(old_pem)), "eve", 60))


def test_with_public_keys_hs256_is_refused_whatever_the_secret():
    _, jwks = generate_private_key()
    verifier = Verifier(secret=SECRET, public_keys=public_key_set(jwks))
    with pytest.raises(AuthError):
        verify_token(verifier, issue_token(SIGNER, "mallory", 60))
    # A forged kid naming the public key, HS256-signed with the public key's bytes.
    kid = jwks["keys"][0]["kid"]
    confused = jwt.encode(claims(), jwks["keys"][0]["x"], "HS256", headers={"kid": kid})
    with pytest.raises(AuthError):
        verify_token(verifier, confused)


def test_a_server_with_public_keys_holds_no_signing_material(tmp_path):
    pem, jwks = generate_private_key()
    server = Settings(state_dir=tmp_path, jwt_public_keys=jwks)
    token = issue_token(signer_of(Settings(state_dir=tmp_path, jwt_private_key=pem)), "ann", 60)
    assert verify_token(verifier_of(server), token) == "ann"
    assert not (tmp_path / "jwt-secret").exists()  # no HS256 secret was created or read


@pytest.mark.parametrize("jwks", [{}, {"keys": []}, {"keys": [{"kty": "oct", "k": "abc"}]}])
def test_public_keys_must_be_ed25519_jwks(jwks, tmp_path):
    with pytest.raises(ValueError, match="JWT public key"):
        Settings(state_dir=tmp_path, jwt_public_keys=jwks)


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
    plain = verify_principal(VERIFIER, issue_token(SIGNER, "ann", 60))
    assert plain == Principal("ann", frozenset())
    operator = issue_token(SIGNER, "ops", 60, [OPERATOR])
    assert verify_principal(VERIFIER, operator).roles == {OPERATOR}
    with pytest.raises(ValueError, match="unknown roles"):
        issue_token(SIGNER, "ops", 60, ["root"])
    smuggled = jwt.encode(claims(sub="x", roles=["operator", "root"]), SECRET, "HS256")
    assert verify_principal(VERIFIER, smuggled).roles == {OPERATOR}
    with pytest.raises(AuthError, match="roles"):
        verify_principal(VERIFIER, jwt.encode(claims(roles="operator"), SECRET, "HS256"))


def test_auth_errors_say_why_for_the_metrics():
    with pytest.raises(AuthError) as missing:
        bearer_token(None)
    assert missing.value.reason == "missing"
    expired = jwt.encode(claims(iat=1, exp=2), SECRET, "HS256")
    with pytest.raises(AuthError) as late:
        verify_token(VERIFIER, expired)
    assert late.value.reason == "expired"
