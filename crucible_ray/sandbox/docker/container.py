"""One sandbox container: how a policy becomes Docker settings, boot ahead, run once, destroy.

A sandbox is *prepared* (created, attached, started, and its launcher waiting on stdin) before
any code is known, then *executed*: the code and the program's stdin go down the attach socket
(the launcher protocol in :mod:`crucible_ray.sandbox.backend`), output is read with caps until
exit or deadline, and the container is destroyed. Nothing is ever reused between evaluations.
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

from crucible_ray.errors import EngineInterrupted, SandboxFault
from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.backend import Outcome, Program
from crucible_ray.sandbox.docker.engine import (
    ENGINE_ERRORS,
    LABEL_LANGUAGE,
    LABEL_MANAGED,
    LABEL_OWNER,
    Engine,
)
from crucible_ray.sandbox.docker.frames import STDERR, STDOUT, FrameReader
from crucible_ray.sandbox.oom import OomWatch
from crucible_ray.sandbox.streams import CappedStream, Deadline

BOOT_TIMEOUT_S = 30.0  # a sandbox that is not ready by then is a platform fault
EXIT_GRACE_S = 5.0  # after output ends, how long the engine may take to report the exit
_INLINE_STDIN_BYTES = 32 * 1024  # larger stdin is written from a thread (the program may not read)


def container_config(
    policy: SandboxPolicy,
    spec: LanguageSpec,
    runtime_name: str,
    image: str,
    owner: str,
) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_container``: the policy, as Docker settings."""
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
        tmpfs={"/tmp": f"{tmp_flags},size={policy.tmp_size_mb}m,mode=1777"},
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
        "environment": spec.environment(policy.memory_mb),
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


def execute(sandbox: DockerSandbox, program: Program) -> Outcome:
    """Run ``program`` in a prepared sandbox (which the caller destroys afterwards)."""
    return _execute(sandbox.engine, sandbox, program.code, program.stdin, program.timeout_s)


def _execute(
    engine: Engine, sandbox: DockerSandbox, code: bytes, stdin: bytes, timeout_s: float
) -> Outcome:
    started, started_wall = time.monotonic(), time.time()
    deadline = started + timeout_s
    memory = _memory_cgroup(sandbox.container_id)
    oom = OomWatch(memory, sandbox.kill) if memory else None  # ends it at the first OOM
    _send_stdin(sandbox.sock, b"%d\n%s%s" % (len(code), code, stdin))
    reader = sandbox.reader
    timed_out = False
    exit_code: int | None = None
    try:
        reader.read_until(deadline)
        # Output ended; the engine reports the exit shortly. A program that closed its output
        # but kept running is still bound by the deadline.
        wait_s = max(deadline - time.monotonic(), 0) + EXIT_GRACE_S
        exit_code = engine.api.wait(sandbox.container_id, timeout=wait_s)["StatusCode"]
    except (Deadline, *ENGINE_ERRORS) as exc:
        if isinstance(exc, Deadline) or time.monotonic() >= deadline:
            timed_out = True
        else:
            raise
        sandbox.kill()
    finally:
        if oom is not None:
            oom.close()
    finished = time.monotonic()
    stderr = reader.streams[STDERR]
    if stderr.data[:1] != b"G":  # the launcher never received the code: safe to retry
        raise SandboxFault(f"sandbox died before the program started (exit {exit_code})")
    del stderr.data[:1]
    stderr.total -= 1
    stderr.limit -= 1
    oom_killed = False
    if not timed_out:
        state = engine.api.inspect_container(sandbox.container_id)["State"]
        oom_killed = bool(state.get("OOMKilled")) or (oom is not None and oom.fired)
        if exit_code in _SIGNAL_EXITS and not oom_killed and not sandbox._killed.is_set():
            _refuse_if_engine_killed(engine, sandbox.container_id, started_wall)
    stdout = reader.streams[STDOUT]
    return Outcome(
        exit_code=None if timed_out else exit_code,
        stdout=stdout.text(),
        stderr=stderr.text(),
        truncated=stdout.truncated or stderr.truncated,
        oom_killed=oom_killed,
        timed_out=timed_out,
        killed=sandbox._killed.is_set(),
        duration_ms=(finished - started) * 1000,
    )


_SIGNAL_EXITS = (128 + 9, 128 + 15)  # SIGKILL, SIGTERM
# Where Docker puts a container's memory cgroup (v1): the cgroupfs driver, the systemd one.
_MEMORY_CGROUPS = ("/sys/fs/cgroup/memory/docker/{id}",
                   "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope")  # fmt: skip


def _memory_cgroup(container_id: str) -> Path | None:
    for layout in _MEMORY_CGROUPS:
        path = Path(layout.format(id=container_id))
        if path.is_dir():
            return path
    return None


def _refuse_if_engine_killed(engine: Engine, container_id: str, since: float) -> None:
    """A program may kill itself; a ``kill`` event means someone else did (the engine shutting
    down, an operator): then the result is the platform's failure, not the program's."""
    events = engine.api.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True,
                               filters={"container": container_id, "event": "kill"})  # fmt: skip
    signals = [e["Actor"]["Attributes"].get("signal") for e in events]
    if signals:
        raise EngineInterrupted(
            f"the sandbox was stopped from outside (signal {signals[0]}), e.g. the container"
            " engine shutting down"
        )


def _send_stdin(sock: socket.socket, payload: bytes) -> None:
    def send() -> None:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # EOF on the program's stdin
        except OSError:
            pass  # the program exited without reading all of it

    if len(payload) <= _INLINE_STDIN_BYTES:
        send()
    else:
        threading.Thread(target=send, name="sandbox-stdin", daemon=True).start()


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
