"""The registry of sandbox backends, by name. Backends are imported on first use, so a host
without Docker's SDK configured (or without runsc) only pays for the backend it runs.

``auto`` (the default) picks the fastest backend that can enforce the whole policy on this
host: every backend enforces the same policy and passes the same conformance suite, so the
choice is about cost, never about isolation. Naming a backend explicitly never falls back.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import get_args

from crucible_ray.errors import CrucibleError, InvalidRequest, SandboxUnavailable
from crucible_ray.policy import BackendName, SandboxPolicy
from crucible_ray.sandbox.backend import SandboxBackend

_BACKENDS: dict[BackendName, str] = {
    "docker": "crucible_ray.sandbox.docker:DockerBackend",
    "runsc": "crucible_ray.sandbox.runsc:RunscBackend",
}
BACKEND_NAMES: tuple[BackendName, ...] = tuple(n for n in get_args(BackendName) if n in _BACKENDS)
# Benchmark-only backends (they isolate nothing): named explicitly or not at all, never tried by
# ``auto``, listed by nothing, and refused unless CRUCIBLE_BENCHMARK_ONLY=1 (see their modules).
BENCHMARK_BACKENDS: dict[str, str] = {
    "null-benchmark-only": "crucible_ray.sandbox.benchmark.null:NullBackend",
}
# What ``auto`` tries, fastest first: the runsc backend costs 0.4-0.5x the docker backend's
# CPU per fresh sandbox (benchmarks/results/peers.md, backends.md), and both pass the whole
# conformance suite and the cluster-level suites.
PREFERENCE: tuple[BackendName, ...] = tuple(n for n in ("runsc", "docker") if n in _BACKENDS)


def backend_class(name: str) -> type[SandboxBackend]:
    try:
        module, _, attribute = {**_BACKENDS, **BENCHMARK_BACKENDS}[name].partition(":")
    except KeyError:
        known = ", ".join(BACKEND_NAMES)
        raise InvalidRequest(f"unknown sandbox backend {name!r}; known: {known}",
                             field="backend") from None  # fmt: skip
    try:
        return getattr(import_module(module), attribute)
    except ModuleNotFoundError as exc:  # a benchmark-only backend, on an install without it
        if name in BENCHMARK_BACKENDS and exc.name and module.startswith(exc.name):
            raise SandboxUnavailable(f"the {name} backend is not installed here") from None
        raise


def make_backend(name: str) -> SandboxBackend:
    """A new backend instance of that name, with its defaults."""
    return backend_class(name)()


def backend_for(policy: SandboxPolicy) -> SandboxBackend:
    """The backend ``policy`` names; for ``auto``, the first of PREFERENCE whose check passes
    here (raising SandboxUnavailable with every backend's reason when none does)."""
    return choose(policy)[0]


def choose(policy: SandboxPolicy) -> tuple[SandboxBackend, list[str]]:
    """``backend_for``, with why: the reasons each faster backend was passed over."""
    if policy.backend != "auto":
        return make_backend(policy.backend), []
    reasons = []
    for name in PREFERENCE:
        backend = make_backend(name)
        try:
            backend.check(policy)
        except CrucibleError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        return backend, reasons
    raise SandboxUnavailable("no sandbox backend can run here: " + "; ".join(reasons))


def sweep_every_backend(work_root: Path, *, everything: bool = False) -> dict[str, int | str]:
    """Sweep with each backend this host has; a backend that cannot run here says why."""
    swept: dict[str, int | str] = {}
    for name in BACKEND_NAMES:
        try:
            swept[name] = make_backend(name).sweep(work_root, everything=everything)
        except CrucibleError as exc:
            swept[name] = str(exc)
    return swept
