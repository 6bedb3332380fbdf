"""The pipes of one ``runsc run``: its stdio is the sandbox's (runsc donates it), so the
program's stdout and stderr are read straight from them, with the policy's caps, under a
deadline, and never more than a bounded buffer at a time."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time

from crucible_ray.sandbox.streams import CappedStream, Deadline

_READ = 1 << 16
_INLINE_STDIN_BYTES = 32 * 1024  # a pipe holds 64 KiB: more is written from a thread


class Channel:
    def __init__(self, process: subprocess.Popen[bytes], limit: int) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
        self.stdout = CappedStream(limit)
        self.stderr = CappedStream(limit)
        self._open = {process.stdout.fileno(): "stdout", process.stderr.fileno(): "stderr"}
        for fd in self._open:
            os.set_blocking(fd, False)
        self._selector = selectors.DefaultSelector()
        for fd in self._open:
            self._selector.register(fd, selectors.EVENT_READ)

    def read_until(self, deadline: float, *, stderr_bytes: int | None = None,
                   stdout_bytes: int | None = None) -> None:  # fmt: skip
        """Read both pipes until both end (or, with ``stderr_bytes``/``stdout_bytes``, until
        that stream holds that many bytes). Raises Deadline when ``deadline`` passes first."""
        while self._open:
            if stderr_bytes is not None and len(self.stderr.data) >= stderr_bytes:
                return
            if stdout_bytes is not None and len(self.stdout.data) >= stdout_bytes:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline
            for key, _ in self._selector.select(min(remaining, 1.0)):
                fd = key.fd
                try:
                    chunk = os.read(fd, _READ)
                except BlockingIOError:
                    continue
                if chunk:
                    getattr(self, self._open[fd]).add(chunk)
                else:
                    self._selector.unregister(fd)
                    del self._open[fd]

    @property
    def ended(self) -> bool:
        return not self._open

    def read_stderr(self, size: int, deadline: float) -> bytes:
        """Read until stderr holds ``size`` bytes or both pipes end; what stderr holds."""
        self.read_until(deadline, stderr_bytes=size)
        return bytes(self.stderr.data)

    def read_stdout(self, size: int, deadline: float) -> bytes:
        """Take the next ``size`` bytes of stdout (fewer when the pipes ended)."""
        self.read_until(deadline, stdout_bytes=size)
        taken = bytes(self.stdout.data[:size])
        del self.stdout.data[:size]
        return taken

    def send_code(self, payload: bytes) -> None:
        self.send(payload, close=False)

    def send(self, payload: bytes, *, close: bool = True) -> None:
        """Write ``payload`` to the sandbox's stdin, then close it (EOF for the program)
        unless ``close`` is false (the compile stage: the program's stdin comes later)."""
        stdin = self.process.stdin
        assert stdin is not None

        def write() -> None:
            with contextlib.suppress(OSError, ValueError):  # the program stopped reading
                view = memoryview(payload)
                while view:
                    view = view[os.write(stdin.fileno(), view) :]
            if close:
                with contextlib.suppress(OSError, ValueError):
                    stdin.close()

        if len(payload) <= _INLINE_STDIN_BYTES:
            write()
        else:
            threading.Thread(target=write, name="runsc-stdin", daemon=True).start()

    def close(self) -> None:
        self._selector.close()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError, ValueError):
                if pipe is not None:
                    pipe.close()
