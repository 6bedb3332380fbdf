"""Reading the compile stage's report (pure): however the bytes arrive, one read or many."""

from __future__ import annotations

import pytest

from crucible_ray.languages import CompileStage
from crucible_ray.sandbox import stages

LOG = b"main.c:1: error: nope\n"
REPORT = b"G" + b"C%03d%08d%d" % (1, len(LOG), 0) + LOG


class Channel:
    """Delivers ``REPORT`` ``chunk`` bytes per read, everything it has received so far."""

    def __init__(self, chunk: int) -> None:
        self.chunk, self.received, self.sent = chunk, b"", b""

    def send_code(self, payload: bytes) -> None:
        self.sent += payload

    def read_stderr(self, size: int, deadline: float) -> bytes:
        while len(self.received) < size and len(self.received) < len(REPORT):
            self.received += REPORT[len(self.received) : len(self.received) + self.chunk]
        return self.received


@pytest.mark.parametrize("chunk", [1, 14, 15, len(REPORT), 1 << 16])
def test_the_report_is_read_whatever_the_reads_bring(chunk):
    channel = Channel(chunk)
    outcome = stages.run_compile(channel, b"int main", CompileStage(command="cc", run=("./a",)),
                                 float("inf"), lambda: False)  # fmt: skip
    assert (outcome.exit_code, outcome.output, outcome.truncated) == (1, LOG.decode(), False)
    assert channel.sent == b"8\nint main"
