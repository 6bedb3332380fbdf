"""The HTTP API on the queue plane (``execution_plane="queue"``): the real Serve app with two
ingress replicas, the Dispatch actors and pulling executors on the session's real cluster,
real gVisor sandboxes and a real PostgreSQL store. Real HTTP only."""

from __future__ import annotations

import pytest

from crucible_ray.settings import Settings
from tests.api.conftest import (  # noqa: F401 (shared; `service` deploys `settings` below)
    as_user,
    http,
    service,
    service_settings,
    token_for,
)

USER_LIMIT = 220  # per user, below the global admission limit
ADMISSION_LIMIT = 256  # room for the fault test's load of 200


@pytest.fixture(scope="package")
def settings(tmp_path_factory, postgres_url) -> Settings:
    return service_settings(
        tmp_path_factory, postgres_url, execution_plane="queue", max_pending=ADMISSION_LIMIT,
        max_pending_per_user=USER_LIMIT, rate_limit_per_minute=30,
        sandbox={"max_timeout_s": 40},
    )  # fmt: skip
