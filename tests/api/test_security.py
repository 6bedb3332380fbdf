"""Secrets, file modes, tokens and the docs page, against the real service over real HTTP:
what Ray keeps (Serve's checkpoint in the GCS, the dispatcher's config), what the state
directory holds, what the API accepts and what a real browser is allowed to load."""

from __future__ import annotations

import json
import stat
import time

import jwt
import pytest

from tests.api.conftest import TEST_SECRET
from tests.conftest import wait_for
from tests.monitoring.test_dashboard import browser

__all__ = ["browser"]  # a fixture, re-registered here
pytestmark = pytest.mark.docker


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def serve_checkpoint() -> bytes:
    """Everything Serve keeps in the GCS's key-value store (its controller's checkpoint)."""
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_list
    from ray.serve._private.storage.kv_store import SERVE_INTERNAL_KV_NAMESPACE as NS

    values = [_internal_kv_get(key, namespace=NS) for key in _internal_kv_list(b"", namespace=NS)]
    return b"".join(v for v in values if v)


def test_no_secret_reaches_rays_control_store(service, settings):
    import ray

    from crucible_ray.execution.client import get_dispatcher

    checkpoint = serve_checkpoint()
    # The deployment's init arguments are in it (the state dir's name is one), but no secret.
    assert settings.state_dir.name.encode() in checkpoint
    assert TEST_SECRET.encode() not in checkpoint
    assert settings.db_url.encode() not in checkpoint
    dump = ray.get(get_dispatcher().config_dump.remote())
    assert dump["store_state_dir"] == str(settings.state_dir)  # the store is found from this
    assert settings.db_url not in str(dump) and TEST_SECRET not in str(dump)


def test_state_secrets_and_audit_log_are_private(as_user, settings):
    client = as_user()
    answer = client.post("/api/eval?wait=true", json={"code": "print('audited')"})
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    eval_id, state = answer.json()["id"], settings.state_dir
    audit = state / "audit.log"

    def audited() -> bool:
        return audit.exists() and eval_id in audit.read_text()

    assert wait_for(audited, timeout_s=30)  # written by the dispatcher, not Ray's log dir
    (event,) = [e for e in map(json.loads, audit.read_text().splitlines()) if e.get("eval_id")
                == eval_id]  # fmt: skip
    assert event["event"] == "evaluation" and event["user"] == client.user
    assert mode(state) == 0o700 and mode(audit) == 0o600
    secrets = {p.name: mode(p) for p in (state / "secrets").iterdir()}
    assert secrets == {"crucible_database_url": 0o600, "crucible_jwt_secret": 0o600}
    assert mode(state / "secrets") == 0o700


def test_tokens_need_our_audience_and_a_lifetime_within_the_cap(http, settings):
    now = int(time.time())
    claims = {"sub": "aud-test", "iat": now, "exp": now + 60, "iss": "crucible-ray",
              "aud": "crucible-ray"}  # fmt: skip

    def status(**changes) -> int:
        token = jwt.encode({**claims, **changes}, TEST_SECRET, "HS256")
        return http.get("/api/me/export", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status() == 200
    assert status(aud="another-service") == 401
    assert status(exp=now + settings.jwt_max_ttl_s + 1) == 401  # signed, but too long-lived
    assert status(nbf=now + 600, exp=now + 900) == 401


def test_openapi_declares_the_bearer_scheme(http):
    spec = http.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
              "description": "a token from `crucible-ray token`"}  # fmt: skip
    assert schemes == {"HTTPBearer": bearer}
    assert spec["paths"]["/api/eval"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_every_response_carries_a_content_security_policy(http):
    for path, code in (("/healthz", 200), ("/openapi.json", 200), ("/api/me/export", 401),
                       ("/nowhere", 404), ("/docs", 200)):  # fmt: skip
        response = http.get(path)
        assert response.status_code == code, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
    assert http.get("/healthz").headers["content-security-policy"].startswith("default-src 'none'")


def test_docs_load_nothing_from_elsewhere(browser, http, service):
    page = http.get("/docs")
    assert "http" not in page.text  # every asset from this origin, no CDN
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script (the policy would refuse it)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        assert http.get(f"/docs/assets/{asset}").status_code == 200, asset
    assert http.get("/docs/assets/..%2Fauth.py").status_code == 404
    driver = browser
    driver.get(f"{service}/docs")
    assert wait_for(lambda: driver.find_elements("css selector", "button.authorize"), 30)
    assert driver.find_elements("css selector", ".opblock-summary-path")  # the routes drawn
    refused = [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []


def test_with_public_keys_replicas_verify_and_hold_nothing_to_sign_with(service, settings, http):
    """Redeployed with an Ed25519 public key only (and the docs page off): tokens of the
    private key pass, HS256 ones are refused, and no signing material is on the cluster."""
    from crucible_ray.api.auth import Signer, generate_private_key, issue_token, load_private_key
    from crucible_ray.api.deployment import deploy

    pem, jwks = generate_private_key()
    eddsa = settings.model_copy(
        update={"jwt_secret": None, "jwt_public_keys": jwks, "docs_enabled": False}
    )
    signed = issue_token(Signer(load_private_key(pem)), "ed-user", 600)
    hs256 = issue_token(Signer(TEST_SECRET), "ed-user", 600)

    def answers(token: str, code: int) -> bool:
        headers = {"Authorization": f"Bearer {token}"}
        return http.get("/api/me/export", headers=headers).status_code == code

    deploy(eddsa, num_replicas=2)
    try:
        assert wait_for(lambda: answers(signed, 200) and answers(hs256, 401), timeout_s=180)
        assert all(answers(hs256, 401) for _ in range(6))  # on every replica
        assert http.get("/docs").status_code == 404
        assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
        assert http.get("/openapi.json").status_code == 200  # the document stays
        assert not (settings.state_dir / "secrets" / "crucible_jwt_secret").exists()
        checkpoint = serve_checkpoint()
        assert TEST_SECRET.encode() not in checkpoint and b"PRIVATE KEY" not in checkpoint
        assert jwks["keys"][0]["x"].encode() in checkpoint  # public: handed to the replicas
    finally:
        deploy(settings, num_replicas=2)
        assert wait_for(lambda: answers(hs256, 200) and answers(signed, 401), timeout_s=180)
