"""Reading a container's multiplexed stdout/stderr with hard caps, while it is produced.

Docker's attach stream (no TTY) is a sequence of frames: an 8-byte header (stream id, 3 zero
bytes, big-endian length) and that many bytes. Past the cap bytes are counted and dropped, so
a 1 GB flood costs a bounded buffer, never host memory (:mod:`crucible_ray.sandbox.streams`).
"""

from __future__ import annotations

import socket
import struct
import time

from crucible_ray.sandbox.streams import CappedStream, Deadline

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxI")
_RECV_BYTES = 64 * 1024


class FrameReader:
    """Demultiplexes frames from an attach socket into capped stdout/stderr collectors."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._sock = sock
        self._pending = bytearray()
        self.streams = {STDOUT: CappedStream(limit), STDERR: CappedStream(limit)}
        self.eof = False

    def read_until(self, deadline: float, want_stderr_bytes: int | None = None,
                   want_stdout_bytes: int | None = None) -> None:  # fmt: skip
        """Read until EOF, or until stderr (stdout) holds ``want_stderr_bytes``
        (``want_stdout_bytes``) when given (0: at once), as the runsc channel does.

        Raises :class:`Deadline` when ``deadline`` (a ``time.monotonic()`` value) passes first.
        """
        while not self.eof:
            stderr, stdout = self.streams[STDERR].data, self.streams[STDOUT].data
            if want_stderr_bytes is not None and len(stderr) >= want_stderr_bytes:
                return
            if want_stdout_bytes is not None and len(stdout) >= want_stdout_bytes:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(_RECV_BYTES)
            except TimeoutError:
                raise Deadline from None
            if not chunk:
                self.eof = True
                return
            self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        self._pending += chunk
        view = memoryview(self._pending)
        offset = 0
        while len(view) - offset >= _HEADER.size:
            stream_id, length = _HEADER.unpack_from(view, offset)
            end = offset + _HEADER.size + length
            if end > len(view):
                break
            target = self.streams.get(stream_id)
            if target is not None:
                target.add(view[offset + _HEADER.size : end])
            offset = end
        view.release()
        del self._pending[:offset]

    def reset(self) -> None:
        """Forget what was read so far (the launcher's boot handshake)."""
        for stream in self.streams.values():
            stream.data.clear()
            stream.total = 0
