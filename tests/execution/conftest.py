"""Execution tests run on the session's real cluster (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher
from crucible_ray.execution.client import stop_dispatcher


@pytest.fixture
def make_client(cluster) -> Iterator[Callable[..., ExecutionClient]]:
    """A fresh dispatcher (and executors) with the given configuration, stopped afterwards."""

    def make(**config) -> ExecutionClient:
        return ExecutionClient(get_dispatcher(DispatcherConfig(**config), replace=True))

    yield make
    stop_dispatcher()
