"""A sandbox container's attach socket as a SessionChannel (crucible_ray.sandbox.backend)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM
from crucible_ray.sandbox.docker.container import DockerSandbox
from crucible_ray.sandbox.docker.execute import cgroup_dirs, oom_killed
from crucible_ray.sandbox.docker.frames import STDERR, STDOUT
from crucible_ray.sandbox.oom import OomWatch
from crucible_ray.sandbox.streams import CappedStream


class DockerSession:
    def __init__(self, sandbox: DockerSandbox, frame_limit: int) -> None:
        self.sandbox = sandbox
        self.pids_headroom = GVISOR_HOST_PIDS_HEADROOM if sandbox.policy.runtime == "runsc" else 0
        self._cgroup = cgroup_dirs(sandbox.container_id)
        memory = self._cgroup.get("memory")
        self._oom = OomWatch(memory, sandbox.kill) if memory else None  # ends it at the first OOM
        sandbox.reader.streams[STDOUT] = CappedStream(frame_limit)

    def send_code(self, payload: bytes) -> None:
        # Blocking: the driver reads all of a message before it writes anything back.
        with contextlib.suppress(OSError):  # it ended: the next read says so
            self.sandbox.sock.sendall(payload)

    def end_input(self) -> None:
        with contextlib.suppress(OSError):
            self.sandbox.sock.shutdown(socket.SHUT_WR)

    def read_stderr(self, size: int, deadline: float) -> bytes:
        self.sandbox.reader.read_until(deadline, want_stderr_bytes=size)
        return bytes(self.sandbox.reader.streams[STDERR].data)

    def read_stdout(self, size: int, deadline: float) -> bytes:
        self.sandbox.reader.read_until(deadline, want_stdout_bytes=size)
        stream = self.sandbox.reader.streams[STDOUT]
        taken = bytes(stream.data[:size])
        del stream.data[:size]
        return taken

    def reset_output(self, limit: int) -> None:
        self.sandbox.reader.streams[STDERR] = CappedStream(limit)

    def oom_fired(self) -> bool:
        return oom_killed(self.sandbox, self._oom)

    def cgroup(self) -> dict[str, Path]:
        return dict(self._cgroup)

    def close(self) -> None:
        if self._oom is not None:
            self._oom.close()
