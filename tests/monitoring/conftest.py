"""Monitoring tests: the real service (the API tests' fixtures, deployed for this package), its
metrics read from the Ray nodes, a real Prometheus, and the dashboard in a real Chromium."""

from __future__ import annotations

import pytest

from crucible_ray.execution import DispatcherConfig
from crucible_ray.settings import Settings
from tests.api.conftest import HTTP_PORT, TEST_SECRET, as_user, http, service, token_for

__all__ = ["as_user", "http", "service", "token_for"]  # fixtures, re-registered here


@pytest.fixture(scope="package")
def settings(tmp_path_factory, postgres_url) -> Settings:
    return Settings(
        state_dir=tmp_path_factory.mktemp("monitoring-state"),
        database_url=postgres_url,
        jwt_secret=TEST_SECRET,
        port=HTTP_PORT,
        rate_limit_per_minute=1000,  # load, not limits, is what these tests are about
        dispatcher=DispatcherConfig(
            slots_per_actor=2, min_actors=2, max_actors=2, max_pending=16, downscale_delay_s=60
        ),
    )
