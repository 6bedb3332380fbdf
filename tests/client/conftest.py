"""The client tests talk real HTTP to the real service (the API tests' fixtures), with their
own deployment: a small admission limit (real 429s) and a rate limit a batch flow fits in."""

from __future__ import annotations

import pytest

from crucible_ray.settings import Settings
from tests.api.conftest import as_user, http, service, service_settings, token_for

__all__ = ["as_user", "http", "service", "token_for"]  # fixtures, re-registered here


@pytest.fixture(scope="package")
def settings(tmp_path_factory, postgres_url) -> Settings:
    return service_settings(tmp_path_factory, postgres_url, rate_limit_per_minute=60)
