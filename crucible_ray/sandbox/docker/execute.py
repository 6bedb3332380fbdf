"""Running a program in a prepared sandbox container: the code and the program's stdin go down
the attach socket (the launcher protocol in :mod:`crucible_ray.sandbox.backend`; a compiled
language's two stages in :mod:`crucible_ray.sandbox.stages`), output is read with caps until
exit or deadline."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from crucible_ray.errors import EngineInterrupted, SandboxFault
from crucible_ray.languages import CompileStage
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM
from crucible_ray.sandbox import stages
from crucible_ray.sandbox.backend import Outcome, Program
from crucible_ray.sandbox.compiling import compile_then_lower
from crucible_ray.sandbox.docker.container import DockerSandbox
from crucible_ray.sandbox.docker.engine import ENGINE_ERRORS, Engine
from crucible_ray.sandbox.docker.frames import STDERR, STDOUT
from crucible_ray.sandbox.oom import OomWatch
from crucible_ray.sandbox.streams import CappedStream, Deadline

EXIT_GRACE_S = 5.0  # after output ends, how long the engine may take to report the exit
_INLINE_STDIN_BYTES = 32 * 1024  # larger stdin is written from a thread (the program may not read)


def execute(sandbox: DockerSandbox, program: Program) -> Outcome:
    """Run ``program`` in a prepared sandbox (which the caller destroys afterwards)."""
    engine, stage = sandbox.engine, sandbox.spec.compile
    cgroup = cgroup_dirs(sandbox.container_id)
    memory = cgroup.get("memory")
    oom = OomWatch(memory, sandbox.kill) if memory else None  # ends it at the first OOM
    reader = sandbox.reader
    compiled = None
    timed_out = False
    exit_code: int | None = None
    started, started_wall = time.monotonic(), time.time()
    deadline = started + program.timeout_s
    try:
        if stage is None:
            payload = b"%d\n" % len(program.code) + program.code + program.stdin
        else:
            compiled = _compile(sandbox, stage, program, cgroup, oom)
            if isinstance(compiled, Outcome):
                return compiled  # it ends in the compile stage
            payload = stages.go_line(sandbox.policy) + program.stdin
            started, started_wall = time.monotonic(), time.time()  # the run stage's own time
            deadline = started + program.timeout_s
        _send_stdin(sandbox.sock, payload)
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
        compile=compiled,
    )


def _compile(
    sandbox: DockerSandbox,
    stage: CompileStage,
    program: Program,
    cgroup: dict[str, Path],
    oom: OomWatch | None,
) -> stages.CompileOutcome | Outcome:
    """The compile stage, then the run's limits in place; an Outcome if it ends here."""

    def reset_output(limit: int) -> None:
        sandbox.reader.streams[STDOUT] = CappedStream(limit)
        sandbox.reader.streams[STDERR] = CappedStream(limit + 1)  # + the "G" ack

    headroom = GVISOR_HOST_PIDS_HEADROOM if sandbox.policy.runtime == "runsc" else 0
    return compile_then_lower(
        _StageChannel(sandbox), program.code, stage, sandbox.policy,
        oom_fired=lambda: oom_killed(sandbox, oom), kill=sandbox.kill, cgroup=cgroup,
        pids_headroom=headroom, reset_output=reset_output,
    )  # fmt: skip


def oom_killed(sandbox: DockerSandbox, oom: OomWatch | None) -> bool:
    if oom is not None and oom.fired:
        return True
    with contextlib.suppress(*ENGINE_ERRORS):
        state = sandbox.engine.api.inspect_container(sandbox.container_id)["State"]
        return bool(state.get("OOMKilled"))
    return False


class _StageChannel:
    """The attach socket as the compile stage needs it."""

    def __init__(self, sandbox: DockerSandbox) -> None:
        self.sandbox = sandbox

    def send_code(self, payload: bytes) -> None:
        _send_stdin(self.sandbox.sock, payload, close=False)

    def read_stderr(self, size: int, deadline: float) -> bytes:
        self.sandbox.reader.read_until(deadline, want_stderr_bytes=size)
        return bytes(self.sandbox.reader.streams[STDERR].data)


_SIGNAL_EXITS = (128 + 9, 128 + 15)  # SIGKILL, SIGTERM
# Where Docker puts a container's cgroups (v1): the cgroupfs driver, the systemd one.
_CGROUP_LAYOUTS = ("/sys/fs/cgroup/{controller}/docker/{id}",
                   "/sys/fs/cgroup/{controller}/system.slice/docker-{id}.scope")  # fmt: skip


def cgroup_dirs(container_id: str) -> dict[str, Path]:
    """The container's memory, cpu and pids cgroup directories that exist."""
    found = {}
    for controller in ("memory", "cpu", "pids"):
        for layout in _CGROUP_LAYOUTS:
            path = Path(layout.format(controller=controller, id=container_id))
            if path.is_dir():
                found[controller] = path
                break
    return found


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


def _send_stdin(sock: socket.socket, payload: bytes, *, close: bool = True) -> None:
    def send() -> None:
        try:
            sock.sendall(payload)
            if close:
                sock.shutdown(socket.SHUT_WR)  # EOF on the program's stdin
        except OSError:
            pass  # the program exited without reading all of it

    if len(payload) <= _INLINE_STDIN_BYTES:
        send()
    else:
        threading.Thread(target=send, name="sandbox-stdin", daemon=True).start()
