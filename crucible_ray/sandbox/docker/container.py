"""One sandbox container: how a policy becomes Docker settings, boot ahead, destroy.

A sandbox is *prepared* (created, attached, started, and its launcher waiting on stdin) before
any code is known, then *executed* (:mod:`.execute`), then destroyed. Nothing is ever reused
between evaluations.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import docker.types

from crucible_ray.errors import SandboxFault
from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.docker.engine import (
    ENGINE_ERRORS,
    LABEL_LANGUAGE,
    LABEL_MANAGED,
    LABEL_OWNER,
    Engine,
)
from crucible_ray.sandbox.docker.frames import STDERR, FrameReader
from crucible_ray.sandbox.stages import BUILD_DIR, boot_policy
from crucible_ray.sandbox.streams import CappedStream, Deadline

BOOT_TIMEOUT_S = 30.0  # a sandbox that is not ready by then is a platform fault


def container_config(
    policy: SandboxPolicy,
    spec: LanguageSpec,
    runtime_name: str,
    image: str,
    owner: str,
) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_container``: the policy, as Docker settings.
    A compiled language boots with its compile stage's limits (lowered before the program)."""
    run_memory_mb, policy = policy.memory_mb, boot_policy(spec, policy)
    tmp_flags = "rw,nosuid,nodev," + ("exec" if policy.tmp_exec else "noexec")
    ulimits = [
        docker.types.Ulimit(name="core", soft=0, hard=0),
        docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
    ]
    pids_limit = policy.pids_limit
    if policy.runtime == "runsc":  # see GVISOR_HOST_PIDS_HEADROOM
        ulimits.append(
            docker.types.Ulimit(name="nproc", soft=policy.pids_limit, hard=policy.pids_limit)
        )
        pids_limit += GVISOR_HOST_PIDS_HEADROOM
    tmpfs = {"/tmp": f"{tmp_flags},size={policy.tmp_size_mb}m,mode=1777"}
    if spec.compile is not None:  # the compiler's workspace; the artifact runs from it
        tmpfs[BUILD_DIR] = f"rw,nosuid,nodev,exec,size={spec.compile.build_mb}m,mode=1777"
    host_config = docker.types.HostConfig(
        version="1.41",
        network_mode="none",
        mem_limit=f"{policy.memory_mb}m",
        memswap_limit=f"{policy.memory_mb}m",
        nano_cpus=int(policy.cpus * 1e9),
        pids_limit=pids_limit,
        ulimits=ulimits,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true", f"seccomp={policy.seccomp_json()}"],
        tmpfs=tmpfs,
        shm_size=f"{policy.shm_size_mb}m",
        ipc_mode="private",
        log_config=docker.types.LogConfig(type="none"),
        runtime=runtime_name,
    )
    return {
        "image": image,
        "command": list(spec.command),
        "user": policy.user,
        "stdin_open": True,  # with detach=False docker-py also sets StdinOnce
        "detach": False,
        "tty": False,
        # Only the language's own variables: the host's environment never reaches the sandbox.
        "environment": spec.environment(run_memory_mb),
        "working_dir": "/tmp",
        "hostname": "sandbox",
        "network_disabled": True,
        "labels": {LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_LANGUAGE: spec.name},
        "host_config": host_config,
    }


@dataclass
class DockerSandbox:
    container_id: str
    spec: LanguageSpec
    policy: SandboxPolicy
    engine: Engine
    owner_dir: Path  # holds the ledger entry
    sock: socket.socket
    reader: FrameReader
    ready_at: float
    _keepalive: Any = None  # the HTTP response object that owns the hijacked socket
    _killed: threading.Event = field(default_factory=threading.Event)

    @property
    def sandbox_id(self) -> str:
        return self.container_id

    @property
    def language(self) -> str:
        return self.spec.name

    @property
    def killed(self) -> bool:
        return self._killed.is_set()

    def kill(self) -> None:
        """Kill the sandbox now (timeout or cancellation). Safe from any thread, idempotent."""
        self._killed.set()
        # Already gone, or the engine is down: destroy() and the orphan sweep follow up.
        with contextlib.suppress(*ENGINE_ERRORS):
            self.engine.api.kill(self.container_id, "SIGKILL")


def prepare(
    engine: Engine,
    spec: LanguageSpec,
    policy: SandboxPolicy,
    runtime_name: str,
    image: str,
    work_dir: Path,
    owner: str,
) -> DockerSandbox:
    """Create, attach and start a sandbox, and wait until its launcher is ready for code."""
    container_id = None
    try:
        config = container_config(policy, spec, runtime_name, image, owner)
        container_id = engine.api.create_container(**config)["Id"]
        ledger.record(work_dir, container_id)  # before it starts: its processes are ours
        response = engine.api.attach_socket(
            container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        sock = response._sock
        engine.api.start(container_id)
        reader = FrameReader(sock, policy.output_limit_bytes)
        try:
            reader.read_until(time.monotonic() + BOOT_TIMEOUT_S, want_stderr_bytes=1)
        except Deadline:
            raise SandboxFault(f"sandbox did not boot within {BOOT_TIMEOUT_S:.0f}s") from None
        if reader.streams[STDERR].data[:1] != b"R":
            raise SandboxFault(f"sandbox failed to boot: {reader.streams[STDERR].text()[:500]}")
        reader.reset()
        reader.streams[STDERR] = CappedStream(policy.output_limit_bytes + 1)  # + the "G" ack
        return DockerSandbox(container_id, spec, policy, engine, work_dir, sock, reader,
                             time.monotonic(), response)  # fmt: skip
    except BaseException:
        # A failed start can leave gVisor processes the engine forgot: the ledger entry stays
        # for the orphan sweep to find them.
        remove_container(engine, container_id, work_dir, keep_record=True)
        raise


def destroy(sandbox: DockerSandbox) -> None:
    with contextlib.suppress(OSError):
        sandbox.sock.close()
    remove_container(sandbox.engine, sandbox.container_id, sandbox.owner_dir)


def remove_container(
    engine: Engine, container_id: str | None, owner_dir: Path, *, keep_record: bool = False
) -> None:
    """Remove a sandbox container (killing it if needed) and, once gone, its ledger entry."""
    if container_id is None:
        return
    try:
        engine.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except ENGINE_ERRORS:
        engine.remove_later(container_id)  # engine down or restarting: retried later
        keep_record = True
    if not keep_record:
        ledger.forget(owner_dir, container_id)
