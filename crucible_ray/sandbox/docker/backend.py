"""DockerBackend: sandboxes as Docker containers under the gVisor runtime (or runc).

The one place where the sandbox layer meets the Docker SDK: every engine error is turned into
:class:`~crucible_ray.sandbox.backend.BackendFailed` here, so nothing above the seam needs to
know what Docker raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker.errors

from crucible_ray.errors import RuntimeUnavailable
from crucible_ray.images.build import docker_digest, require_image
from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import BackendFailed, Outcome, Program, Sandbox, SandboxBackend
from crucible_ray.sandbox.docker import container, execute
from crucible_ray.sandbox.docker.container import DockerSandbox
from crucible_ray.sandbox.docker.engine import ENGINE_ERRORS, LABEL_MANAGED, LABEL_OWNER, Engine
from crucible_ray.sandbox.docker.session import DockerSession
from crucible_ray.sandbox.docker.sweep import stray_gvisor_processes, sweep_orphans
from crucible_ray.sandbox.owners import owner_alive


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Docker's exceptions, as the seam's one error: a refused request (4xx) is not transient."""
    try:
        yield
    except ENGINE_ERRORS as exc:
        refused = isinstance(exc, docker.errors.APIError) and exc.is_client_error()
        raise BackendFailed(f"Docker engine: {exc}", transient=not refused) from exc


DOCKER_RUNSC_ROOT = "/var/run/docker/runtime-runc/moby"  # Docker 20.10's, for runsc too
RUNSC = shutil.which("runsc") or "/usr/bin/runsc"
ATTACH_TIMEOUT_S = 10.0


class DockerBackend(SandboxBackend):
    name = "docker"

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or Engine()
        self._runtime_name: str | None = None

    def check(self, policy: SandboxPolicy) -> str:
        if policy.runtime_monitoring == "required" and policy.runtime != "runsc":
            raise RuntimeUnavailable("runtime monitoring needs gVisor (runtime runsc)")
        self._runtime_name = self.engine.check_runtime(policy.runtime)
        policy.seccomp_json()  # raises when the profile is missing or broken
        if _monitored(policy):
            self.monitoring()
        return policy.runtime

    def describe(self) -> dict[str, str]:
        from crucible_ray.host import runsc_version

        info = self.engine.info()
        return {"engine": f"Docker {info.get('ServerVersion', '?')}",
                "gVisor": runsc_version() or "not installed"}  # fmt: skip

    def image(self, spec: LanguageSpec) -> str:
        with engine_errors():
            return require_image(self.engine.api, spec)

    def image_digest(self, spec: LanguageSpec) -> str:
        with engine_errors():
            return docker_digest(self.engine.api, spec)

    def prepare(self, spec: LanguageSpec, policy: SandboxPolicy, image: str, work_dir: Path,
                owner: str) -> DockerSandbox:  # fmt: skip
        if self._runtime_name is None:
            raise RuntimeError("DockerBackend.check() was not called")
        with engine_errors():
            sandbox = container.prepare(self.engine, spec, policy, self._runtime_name, image,
                                        work_dir, owner)  # fmt: skip
        if _monitored(policy):
            try:
                self._attach_monitoring(sandbox)
            except BaseException:
                self.destroy(sandbox)
                raise
        return sandbox

    def _attach_monitoring(self, sandbox: DockerSandbox) -> None:
        """Docker 20.10 cannot give one container a trace configuration at start, so the trace
        session is attached to the running sandbox (``runsc trace create``): the launcher is
        then still waiting for the code, so nothing the program does is missed."""
        monitor = self.monitoring()
        monitor.expect(sandbox.container_id, image=sandbox.spec.name,
                       compiled=sandbox.spec.compile is not None)  # fmt: skip
        with engine_errors():
            pid = self.engine.api.inspect_container(sandbox.container_id)["State"]["Pid"]
        attach = [RUNSC, f"--root={runsc_root(pid)}", "trace", "create", "--config",
                  str(monitor.config_path), sandbox.container_id]  # fmt: skip
        try:
            done = subprocess.run(attach, capture_output=True, text=True, timeout=ATTACH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendFailed(f"runtime monitoring could not attach: {exc}") from None
        if done.returncode != 0:
            raise BackendFailed(
                f"runtime monitoring could not attach: {done.stderr.strip()[-200:]}"
            )

    def execute(self, sandbox: Sandbox, program: Program) -> Outcome:
        assert isinstance(sandbox, DockerSandbox)
        with engine_errors():
            outcome = execute.execute(sandbox, program)
        return dataclasses.replace(outcome, security=self.security_summary(sandbox.container_id))

    def session(self, sandbox: Sandbox, frame_limit: int) -> DockerSession:
        assert isinstance(sandbox, DockerSandbox)
        self.session_monitoring(sandbox.container_id)
        return DockerSession(sandbox, frame_limit)

    def destroy(self, sandbox: Sandbox) -> None:
        assert isinstance(sandbox, DockerSandbox)
        self.stop_monitoring(sandbox.container_id)
        container.destroy(sandbox)

    def sweep(self, work_root: Path, *, everything: bool = False) -> int:
        with engine_errors():
            return sweep_orphans(self.engine, work_root, everything=everything)

    def orphans(self, work_root: Path) -> int:
        with engine_errors():
            containers = self.engine.api.containers(all=True, filters={"label": LABEL_MANAGED})
            dead = [c for c in containers if not owner_alive(c["Labels"].get(LABEL_OWNER, ""))]
            return len(dead) + len(stray_gvisor_processes(self.engine, work_root))

    def live_sandboxes(self, work_dir: Path) -> set[str]:
        with engine_errors():
            found = self.engine.api.containers(
                all=True, filters={"label": [LABEL_MANAGED, f"{LABEL_OWNER}={work_dir.name}"]}
            )
        return {c["Id"] for c in found}

    def maintain(self) -> None:
        if self.engine.pending_removals:
            self.engine.retry_removals()

    def close(self) -> None:
        self.engine.retry_removals()
        self.stop_monitoring()


def _monitored(policy: SandboxPolicy) -> bool:
    return policy.runtime == "runsc" and policy.runtime_monitoring != "off"


def runsc_root(pid: int) -> str:
    """The ``--root`` Docker's shim gave the runsc processes of a container (read from the
    sandbox's own command line: it depends on the engine's configuration)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return DOCKER_RUNSC_ROOT
    for i, word in enumerate(words):
        if word.startswith(b"--root="):
            return word[len(b"--root=") :].decode()
        if word == b"--root" and i + 1 < len(words):
            return words[i + 1].decode()
    return DOCKER_RUNSC_ROOT
