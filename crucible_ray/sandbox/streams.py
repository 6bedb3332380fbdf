"""Output collected with hard caps while it is produced: past the cap bytes are counted and
dropped, so a 1 GB flood costs a bounded buffer, never host memory. Backend-neutral."""

from __future__ import annotations

from dataclasses import dataclass, field


class Deadline(Exception):
    """The deadline passed before the stream ended."""


@dataclass
class CappedStream:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes | memoryview) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")
