"""A runsc sandbox's pipes as a :class:`~crucible_ray.sandbox.backend.SessionChannel`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM
from crucible_ray.sandbox.oom import OomWatch
from crucible_ray.sandbox.runsc.sandbox import RunscSandbox
from crucible_ray.sandbox.streams import CappedStream


class RunscSession:
    pids_headroom = GVISOR_HOST_PIDS_HEADROOM

    def __init__(self, sandbox: RunscSandbox, frame_limit: int) -> None:
        self.sandbox = sandbox
        self.channel = sandbox.channel
        self.channel.stdout = CappedStream(frame_limit)
        self._oom = OomWatch(sandbox.cgroup.memory_dir, sandbox.kill)  # ends it at the first OOM

    def send_code(self, payload: bytes) -> None:
        # Blocking: the driver reads all of a message before it writes anything back.
        stdin = self.sandbox.process.stdin
        assert stdin is not None
        with contextlib.suppress(OSError, ValueError):  # it ended: the next read says so
            view = memoryview(payload)
            while view:
                view = view[os.write(stdin.fileno(), view) :]

    def end_input(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.sandbox.process.stdin is not None:
                self.sandbox.process.stdin.close()

    def read_stderr(self, size: int, deadline: float) -> bytes:
        return self.channel.read_stderr(size, deadline)

    def read_stdout(self, size: int, deadline: float) -> bytes:
        return self.channel.read_stdout(size, deadline)

    def reset_output(self, limit: int) -> None:
        self.channel.stderr = CappedStream(limit)

    def oom_fired(self) -> bool:
        return self._oom.fired or self.sandbox.cgroup.oom_kills() > 0

    def cgroup(self) -> dict[str, Path]:
        return dict(self.sandbox.cgroup.dirs())

    def close(self) -> None:
        self._oom.close()
