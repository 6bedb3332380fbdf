"""The sandbox conformance suite's fixtures: every test that takes ``backend_name``, ``runner``
or ``make_runner`` runs once per backend in CONFORMANCE_BACKENDS, against the real thing (Docker
with gVisor; runsc driven directly). A backend that fails one of them is not shipped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crucible_ray import CrucibleError, SandboxPolicy, SandboxRunner
from crucible_ray.languages import LANGUAGES
from crucible_ray.sandbox import SandboxBackend, make_backend
from crucible_ray.sandbox.docker import DockerBackend
from tests.conftest import _unavailable

CONFORMANCE_BACKENDS = ("docker",)


@pytest.fixture(scope="session", params=CONFORMANCE_BACKENDS)
def backend_name(request) -> str:
    return request.param


def new_backend(name: str, engine: Any = None) -> SandboxBackend:
    return DockerBackend(engine) if name == "docker" else make_backend(name)


@pytest.fixture(scope="session")
def checked_backend(backend_name, request) -> str:
    """The backend is usable here with every image built (CI: fails, never skips)."""
    engine = request.getfixturevalue("engine") if backend_name == "docker" else None
    backend = new_backend(backend_name, engine)
    try:
        backend.check(SandboxPolicy(backend=backend_name))
        for spec in LANGUAGES.values():
            backend.image(spec)
    except CrucibleError as exc:
        _unavailable(f"{backend_name}: {exc}")
    return backend_name


@pytest.fixture(scope="session")
def runner(checked_backend) -> Iterator[SandboxRunner]:
    """A gVisor runner with one warm Python sandbox, shared by the conformance tests."""
    policy = SandboxPolicy(backend=checked_backend)
    with SandboxRunner(policy, warm={"python": 1}) as runner:
        yield runner


@pytest.fixture
def make_runner(checked_backend, tmp_path) -> Iterator[Callable[..., SandboxRunner]]:
    """Started runners of this test's backend (``policy`` fields as keywords); closed after."""
    made: list[SandboxRunner] = []

    def make(warm: int | dict[str, int] = 0, state_dir: Path | None = None,
             **policy: Any) -> SandboxRunner:  # fmt: skip
        runner = SandboxRunner(SandboxPolicy(backend=checked_backend, **policy), warm=warm,
                               state_dir=state_dir or tmp_path / f"state-{len(made)}")  # fmt: skip
        made.append(runner)
        return runner.start()

    yield make
    for runner in made:
        runner.close()


@pytest.fixture(scope="session")
def runc_runner(engine) -> Iterator[SandboxRunner]:
    """The explicit, weaker runc path of the Docker backend (proves the seccomp profile applies
    there too); runsc has no runc."""
    with SandboxRunner(SandboxPolicy(runtime="runc"), backend=DockerBackend(engine)) as runner:
        yield runner
