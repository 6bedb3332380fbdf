"""The HTTP API on the queue plane (``execution_plane="queue"``): the real Serve app with two
ingress replicas, the Dispatch actors and pulling executors on the session's real cluster,
real gVisor sandboxes and a real PostgreSQL store. Real HTTP only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crucible_ray.settings import Settings
from tests.api.conftest import (  # noqa: F401 (fixtures shared with the dispatcher plane's tests)
    HTTP_PORT,
    _healthy,
    as_user,
    http,
    service_settings,
    token_for,
)
from tests.conftest import wait_for

USER_LIMIT = 220  # per user, below the global admission limit
ADMISSION_LIMIT = 256  # room for the fault test's load of 200


@pytest.fixture(scope="package")
def settings(tmp_path_factory, postgres_url) -> Settings:
    return service_settings(
        tmp_path_factory, postgres_url, execution_plane="queue", max_pending=ADMISSION_LIMIT,
        max_pending_per_user=USER_LIMIT, rate_limit_per_minute=30,
        sandbox={"max_timeout_s": 40},
    )  # fmt: skip


@pytest.fixture(scope="package")
def service(cluster, settings) -> Iterator[str]:
    from crucible_ray.api.deployment import deploy, undeploy

    deploy(settings, num_replicas=2)
    url = f"http://127.0.0.1:{HTTP_PORT}"
    assert wait_for(lambda: _healthy(url), timeout_s=180), "the service never became healthy"
    yield url
    undeploy()
