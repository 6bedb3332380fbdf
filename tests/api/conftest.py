"""The real service for the API tests: a 3-node Ray cluster, the Serve app with two ingress
replicas, real gVisor sandboxes, and results in a real PostgreSQL server. Real HTTP only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from crucible_ray.api.auth import Signer, issue_token
from crucible_ray.api.operations import HEALTH_TTL_S
from crucible_ray.execution import DispatcherConfig
from crucible_ray.settings import Settings
from tests.conftest import TEST_PORT_OFFSET, wait_for

HTTP_PORT = 8200 + TEST_PORT_OFFSET
LIMITS = {"metadata_limit_bytes": 2048, "max_timeout_s": 40,  # the API tests' service
          "test_data_limit_bytes": 64 << 10}  # fmt: skip
TEST_SECRET = "api-tests-secret-7Hq2Lm9Xv4Rt8Kp3Wz6Nb1Yc5Df0Gj"


def service_settings(tmp_path_factory, postgres_url: str, **overrides) -> Settings:
    """The service as every HTTP test package deploys it (two executor actors of two slots,
    results in the real PostgreSQL); ``overrides`` are Settings or DispatcherConfig fields."""
    dispatcher = {"slots_per_actor": 2, "min_actors": 2, "max_actors": 2, "max_pending": 8,
                  "downscale_delay_s": 60}  # fmt: skip
    for key in list(overrides):
        if key in DispatcherConfig.model_fields:
            dispatcher[key] = overrides.pop(key)
    return Settings(
        state_dir=tmp_path_factory.mktemp("state"),
        database_url=postgres_url,
        jwt_secret=TEST_SECRET,
        port=HTTP_PORT,
        dispatcher=DispatcherConfig(**dispatcher),
        **overrides,
    )


def wait_until_idle(http: httpx.Client) -> None:
    """Nothing running or queued: the admission limit is small on purpose. Each replica keeps
    its /healthz answer for HEALTH_TTL_S, so an idle answer counts only when it is still idle
    once that long has passed (a cached one may predate the last test's submissions)."""

    def idle() -> bool:
        health = http.get("/healthz").json()
        return health["running"] == 0 and health["queued"] == 0

    def idle_now() -> bool:
        if not idle():
            return False
        time.sleep(HEALTH_TTL_S + 0.2)
        return idle()

    assert wait_for(idle_now, timeout_s=120)


def poll(client, eval_id: str, timeout_s: float = 90.0) -> dict:
    body: dict = {}

    def final() -> bool:
        nonlocal body
        body = client.get(f"/api/eval/{eval_id}").json()
        return body["status"] in ("succeeded", "failed", "timed_out", "cancelled", "error")

    assert wait_for(final, timeout_s=timeout_s), body
    return body


@pytest.fixture(scope="package")
def settings(tmp_path_factory, postgres_url) -> Settings:
    # Limits off their defaults, so tests can tell that the service enforces the settings.
    return service_settings(
        tmp_path_factory,
        postgres_url,
        max_body_bytes=1 << 20,
        metadata_limit_bytes=LIMITS["metadata_limit_bytes"],
        sandbox={
            "max_timeout_s": LIMITS["max_timeout_s"],
            "test_data_limit_bytes": LIMITS["test_data_limit_bytes"],
        },
    )


@pytest.fixture(scope="package")
def service(cluster, settings) -> Iterator[str]:
    from crucible_ray.api.deployment import deploy, undeploy

    deploy(settings, num_replicas=2)
    url = f"http://127.0.0.1:{HTTP_PORT}"
    assert wait_for(lambda: _healthy(url), timeout_s=180), "the service never became healthy"
    yield url
    undeploy()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def token_for():
    def make(user: str, ttl_s: int = 600, roles: tuple[str, ...] | list[str] = ()) -> str:
        return issue_token(Signer(TEST_SECRET), user, ttl_s, roles)

    return make


@pytest.fixture
def http(service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=120) as client:
        yield client


@pytest.fixture
def as_user(http, token_for):
    """An HTTP client authenticated as a fresh user (rate limits are per user)."""
    import uuid

    def make(name: str | None = None) -> httpx.Client:
        user = name or f"user-{uuid.uuid4().hex[:8]}"
        client = httpx.Client(
            base_url=str(http.base_url),
            timeout=120,
            headers={"Authorization": f"Bearer {token_for(user)}"},
        )
        client.user = user  # type: ignore[attr-defined]
        return client

    return make
