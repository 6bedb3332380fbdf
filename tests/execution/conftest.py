"""A real Ray cluster for the execution tests: one head and two executor nodes (separate
``ray start`` process trees, token auth on), with real gVisor sandboxes behind them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from crucible_ray.cluster import local
from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher
from crucible_ray.execution.client import stop_dispatcher

PORT_OFFSET = 200  # beside a developer's own cluster, never on top of it


@pytest.fixture(scope="package")
def cluster(engine, tmp_path_factory) -> Iterator[local.ClusterState]:
    state_dir = tmp_path_factory.mktemp("cluster")
    state = local.up(executors=2, slots=2, state_dir=state_dir, port_offset=PORT_OFFSET)
    local.connect(state_dir)
    yield state
    import ray

    stop_dispatcher()
    ray.shutdown()
    local.down(state_dir)


@pytest.fixture
def make_client(cluster) -> Iterator[Callable[..., ExecutionClient]]:
    """A fresh dispatcher (and executors) with the given configuration, stopped afterwards."""

    def make(**config) -> ExecutionClient:
        return ExecutionClient(get_dispatcher(DispatcherConfig(**config), replace=True))

    yield make
    stop_dispatcher()
