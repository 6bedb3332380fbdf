"""Shared fixtures. Sandbox tests use the real Docker engine with the real gVisor runtime.

Without them, tests that need them are skipped locally, but under CI=true they FAIL: a
missing engine, runtime or image must never pass silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from crucible_ray import CrucibleError, Engine, SandboxPolicy, SandboxRunner
from crucible_ray.images.build import require_image
from crucible_ray.languages import LANGUAGES
from crucible_ray.sandbox.engine import LABEL_MANAGED

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and the sandbox platform is unavailable: {reason}")
    pytest.skip(f"sandbox platform unavailable: {reason}")


@pytest.fixture(scope="session")
def engine() -> Engine:
    engine = Engine(timeout_s=30)
    try:
        engine.check_runtime("runsc")
        for spec in LANGUAGES.values():
            require_image(engine.api, spec)
    except CrucibleError as exc:
        _unavailable(str(exc))
    return engine


@pytest.fixture(scope="session")
def runner(engine: Engine) -> Iterator[SandboxRunner]:
    """A gVisor runner with one warm Python sandbox, shared by the sandbox tests."""
    with SandboxRunner(engine=engine, warm={"python": 1}) as runner:
        yield runner


@pytest.fixture(scope="session")
def runc_runner(engine: Engine) -> Iterator[SandboxRunner]:
    """The explicit, weaker runc path (used to prove the seccomp profile applies there)."""
    with SandboxRunner(SandboxPolicy(runtime="runc"), engine=engine) as runner:
        yield runner


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
