"""Shared fixtures. Sandbox tests use real gVisor: through the Docker engine (the docker
backend) and driven directly (the runsc backend). Cluster-level tests run on the backend that
``auto`` picks here, and watch sandboxes through the backend seam, never through Docker.

Without them, tests that need them are skipped locally, but under CI=true they FAIL: a
missing engine, runtime or image must never pass silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crucible_ray import CrucibleError
from crucible_ray.images.build import require_image
from crucible_ray.languages import IMAGES
from crucible_ray.paths import sandboxes_dir
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import SandboxBackend
from crucible_ray.sandbox.docker.engine import LABEL_MANAGED, Engine
from crucible_ray.sandbox.registry import backend_for
from tests.support.postgres import PostgresUnavailable, throwaway_postgres

# Several checkouts can run the suite at once on one machine: each picks its own ports.
TEST_PORT_OFFSET = int(os.environ.get("CRUCIBLE_TEST_PORT_OFFSET", "200"))
PG_PORT = 55232 + TEST_PORT_OFFSET
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CRUCIBLE_BENCHMARK_ONLY"):  # a backend that isolates nothing is allowed
        raise pytest.UsageError("CRUCIBLE_BENCHMARK_ONLY is set: the test suite never runs "
                                "with benchmark-only backends enabled")  # fmt: skip


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and the sandbox platform is unavailable: {reason}")
    pytest.skip(f"sandbox platform unavailable: {reason}")


@pytest.fixture(scope="session")
def engine() -> Engine:
    engine = Engine(timeout_s=30)
    try:
        engine.check_runtime("runsc")
        for spec in IMAGES.values():
            require_image(engine.api, spec)
    except CrucibleError as exc:
        _unavailable(str(exc))
    return engine


@pytest.fixture(scope="session")
def sandbox_backend(engine) -> SandboxBackend:
    """The backend ``auto`` picks on this host, as executors and services do, with every
    language's image ready for it: what the cluster-level tests run on."""
    policy = SandboxPolicy()
    try:
        backend = backend_for(policy)
        backend.check(policy)
        for spec in IMAGES.values():
            backend.image(spec)
    except CrucibleError as exc:
        _unavailable(str(exc))
    return backend


def live_sandboxes(backend: SandboxBackend, owner: str, state_dir: Path | None = None) -> set[str]:
    """Ids of the sandboxes one runner (an executor, by its owner token) has on this host."""
    return backend.live_sandboxes(sandboxes_dir(state_dir) / owner)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (Debian's package), reached over its unix socket."""
    try:
        server = throwaway_postgres(PG_PORT)
        url = server.__enter__()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


CLUSTER_PORT_OFFSET = TEST_PORT_OFFSET  # beside a developer's own cluster, never on top of it


@pytest.fixture(scope="session")
def cluster(sandbox_backend, tmp_path_factory) -> Iterator[Any]:
    """One real Ray cluster for the whole session: a head and two executor nodes (separate
    `ray start` process trees, token auth on), driving real gVisor sandboxes. Shared because
    Ray caches its auth token per process: a second cluster could not be joined."""
    from crucible_ray.cluster import local

    state_dir = tmp_path_factory.mktemp("cluster")
    try:
        state = local.up(executors=2, slots=2, state_dir=state_dir, port_offset=CLUSTER_PORT_OFFSET)
        local.connect(state_dir)
        yield state
    finally:  # whatever failed, nothing of the cluster outlives the session
        import ray

        from crucible_ray.execution.client import stop_dispatcher

        if ray.is_initialized():
            stop_dispatcher()
            ray.shutdown()
        if (state_dir / "state.json").exists():
            local.down(state_dir)


def wait_for(predicate, timeout_s: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; returns whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def crucible_containers(engine: Engine) -> list[dict]:
    return engine.api.containers(all=True, filters={"label": LABEL_MANAGED})
