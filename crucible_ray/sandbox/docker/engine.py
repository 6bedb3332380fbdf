"""The Docker engine as the sandbox layer sees it: connection, runtime checks, labels.

Fail secure: :meth:`Engine.check_runtime` refuses unless the configured runtime is registered
exactly as crucible needs it. The gVisor runtime is registered by ``crucible-ray setup`` under
its own name, ``crucible-runsc``, with two flags that are part of the security model:
``--network=none`` (gVisor gets no network stack at all) and ``--oci-seccomp`` (without it
gVisor ignores the container's seccomp profile; measured on runsc 2024-07-29).
"""

from __future__ import annotations

import os
from functools import cached_property

import docker
import docker.errors
import requests.exceptions

from crucible_ray.errors import EngineUnavailable, RuntimeUnavailable
from crucible_ray.policy import Runtime

RUNSC_RUNTIME_NAME = "crucible-runsc"
RUNSC_RUNTIME_ARGS = ("--network=none", "--oci-seccomp")
DOCKER_RUNTIME_NAMES: dict[str, str] = {"runsc": RUNSC_RUNTIME_NAME, "runc": "runc"}

LABEL_MANAGED = "dev.crucible.managed"
LABEL_OWNER = "dev.crucible.owner"
LABEL_LANGUAGE = "dev.crucible.language"

# Transient engine failures: the daemon restarting, its socket missing, a dropped connection.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class Engine:
    """A connection to the Docker engine with the checks the sandbox layer relies on."""

    def __init__(self, base_url: str | None = None, timeout_s: float = 60.0) -> None:
        self._base_url = base_url or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        self._timeout_s = timeout_s
        self.pending_removals: set[str] = set()

    @cached_property
    def api(self) -> docker.APIClient:
        try:
            client = docker.APIClient(
                base_url=self._base_url, timeout=self._timeout_s, max_pool_size=128
            )
            client.ping()
        except ENGINE_ERRORS as exc:
            raise EngineUnavailable(
                f"cannot reach the Docker engine at {self._base_url}: {exc}"
                " (start it with `crucible-ray setup`)"
            ) from exc
        return client

    def remove_later(self, container_id: str) -> None:
        """Remember a container whose removal failed (engine down) to retry it later."""
        self.pending_removals.add(container_id)

    def retry_removals(self) -> None:
        for container_id in list(self.pending_removals):
            try:
                self.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
            except ENGINE_ERRORS:
                return  # still down; try again next time
            self.pending_removals.discard(container_id)

    def info(self) -> dict:
        try:
            return self.api.info()
        except ENGINE_ERRORS as exc:
            raise EngineUnavailable(f"Docker engine stopped answering: {exc}") from exc

    def check_runtime(self, runtime: Runtime) -> str:
        """Return the Docker runtime name to use for ``runtime``, or refuse."""
        name = DOCKER_RUNTIME_NAMES[runtime]
        registered = self.info().get("Runtimes", {})
        if name not in registered:
            raise RuntimeUnavailable(
                f"container runtime {name!r} is not registered with Docker; evaluations are"
                " refused rather than run with weaker isolation (run `crucible-ray setup`)"
            )
        if runtime == "runsc":
            entry = registered[name]
            args = tuple(entry.get("runtimeArgs") or ())
            if "runsc" not in os.path.basename(entry.get("path", "")) or any(
                a not in args for a in RUNSC_RUNTIME_ARGS
            ):
                raise RuntimeUnavailable(
                    f"runtime {name!r} is registered as {entry}, not as gVisor with"
                    f" {' '.join(RUNSC_RUNTIME_ARGS)}; refusing (run `crucible-ray setup`)"
                )
        return name
