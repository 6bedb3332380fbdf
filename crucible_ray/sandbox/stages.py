"""The compile and run stages of a compiled language in one fresh sandbox (backend-neutral).

The sandbox boots with the compile stage's limits (:func:`boot_policy`: more memory, processes
and CPU, an executable ``/build``). The launcher (``launch-compiled.sh``) compiles, removes the
compile caches (``/build/.cache``), and reports::

    "C" <exit status: 3 digits> <log length: 8 digits> <1 if the log was cut, else 0> <log>

If the compile succeeded, the host lowers the sandbox's cgroup limits to exactly the policy's
(:func:`lower_limits`) and only then sends ``<process limit>\\n`` and the program's stdin; the
launcher lowers its own process limit to that, writes ``G`` and runs the program. The program
therefore never runs with the compiler's limits. Lowering works because the compiler has
exited and gVisor returns freed memory to the host at once (measured: 300 MiB back within
0.1 s); memory still held then (a huge artifact in ``/build``) is the program's, and a run
that cannot fit in its limit is reported as out of memory.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crucible_ray.languages import CompileStage, LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.streams import Deadline

HEADER_BYTES = 13  # "C" + 3 + 8 + 1
BUILD_DIR = "/build"
_LOWER_WAIT_S = 1.0  # for memory the compiler freed a moment ago


@dataclass(frozen=True)
class CompileOutcome:
    """What the compile stage did. ``exit_code`` is None when it did not finish."""

    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool
    oom_killed: bool
    duration_ms: float

    @property
    def succeeded(self) -> bool:
        return self.status == "ok"

    @property
    def status(self) -> str:
        """ok, error (the compiler said no), timed_out or oom_killed: CompileResult.status."""
        if self.timed_out:
            return "timed_out"
        if self.oom_killed:
            return "oom_killed"
        return "ok" if self.exit_code == 0 else "error"


class RunDoesNotFit(Exception):
    """The sandbox could not be lowered to the run's memory limit: the built program already
    holds more (its artifact in ``/build``). Reported as out of memory, the program's fault."""


class StageChannel(Protocol):
    """The sandbox's stdio as the compile stage needs it (each backend has one)."""

    def send_code(self, payload: bytes) -> None:
        """Write ``payload`` to the sandbox's stdin and keep stdin open."""

    def read_stderr(self, size: int, deadline: float) -> bytes:
        """Read until stderr holds ``size`` bytes or ends; what it holds. Raises Deadline."""


def run_compile(channel: StageChannel, code: bytes, stage: CompileStage, deadline: float,
                oom_fired: Callable[[], bool]) -> CompileOutcome:  # fmt: skip
    """Send the code and wait for the compile report, until ``deadline``. Raises
    :class:`CompileLost` when the sandbox ended without a report and not of an OOM kill."""
    started = time.monotonic()

    def outcome(exit_code: int | None = None, output: bytes = b"", cut: bool = False,
                timed_out: bool = False, oom: bool = False) -> CompileOutcome:  # fmt: skip
        return CompileOutcome(exit_code, output.decode("utf-8", errors="replace"), cut,
                              timed_out, oom, (time.monotonic() - started) * 1000)  # fmt: skip

    channel.send_code(b"%d\n" % len(code) + code)
    try:
        # A read may bring more than was asked for (the report and its log in one write).
        data = channel.read_stderr(1 + HEADER_BYTES, deadline)
        if len(data) >= 1 + HEADER_BYTES:
            status, length, cut = parse_header(data[1 : 1 + HEADER_BYTES])
            end = 1 + HEADER_BYTES + length
            data = channel.read_stderr(end, deadline)
            if len(data) >= end:
                return outcome(status, data[1 + HEADER_BYTES : end], cut)
    except Deadline:
        return outcome(timed_out=True)
    except ValueError:  # not the launcher's report: treat the sandbox as broken
        raise CompileLost(received=True) from None
    if data[:1] == b"G" and oom_fired():
        return outcome(oom=True)
    raise CompileLost(received=data[:1] == b"G")


class CompileLost(Exception):
    """The sandbox ended during the compile stage without reporting (not of an OOM kill).
    ``received``: the launcher had the code (otherwise it never saw it)."""

    def __init__(self, *, received: bool) -> None:
        super().__init__("the sandbox ended during the compile stage")
        self.received = received


def boot_policy(spec: LanguageSpec, policy: SandboxPolicy) -> SandboxPolicy:
    """The limits a sandbox of ``spec`` boots with: the compile stage's, never below the
    policy's. Interpreted languages boot with the policy itself."""
    stage = spec.compile
    if stage is None:
        return policy
    return policy.model_copy(
        update={
            "memory_mb": max(stage.memory_mb, policy.memory_mb),
            "pids_limit": max(stage.pids_limit, policy.pids_limit),
            "cpus": max(stage.cpus, policy.cpus),
        }
    )


def parse_header(header: bytes) -> tuple[int, int, bool]:
    """(exit status, log length, cut) of a compile report. ValueError when malformed."""
    if len(header) != HEADER_BYTES or header[:1] != b"C" or not header[1:].isdigit():
        raise ValueError(f"malformed compile report {header[:HEADER_BYTES]!r}")
    return int(header[1:4]), int(header[4:12]), header[12:13] == b"1"


def go_line(policy: SandboxPolicy) -> bytes:
    """What the host sends once the run's limits are in place: the run's process limit."""
    return b"%d\n" % policy.pids_limit


def lower_limits(dirs: dict[str, Path], policy: SandboxPolicy, pids_headroom: int) -> None:
    """Set the sandbox's cgroup (v1) ``dirs`` (memory, cpu, pids) to exactly the policy's
    limits; ``pids_headroom``: the runtime's own host threads counted in the pids cgroup.

    Memory first, then memory+swap (memory+swap may never be below memory). Raises
    RunDoesNotFit when the memory still held is above the run's limit; OSError when a cgroup
    cannot be written (the caller fails the evaluation: the run never starts unrestricted).
    """
    memory = policy.memory_mb * 1024 * 1024
    deadline = time.monotonic() + _LOWER_WAIT_S
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
        while True:
            try:
                (dirs["memory"] / name).write_text(str(memory))
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise RunDoesNotFit from exc
                time.sleep(0.02)
    period_us = int((dirs["cpu"] / "cpu.cfs_period_us").read_text())
    (dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(int(policy.cpus * period_us)))
    (dirs["pids"] / "pids.max").write_text(str(policy.pids_limit + pids_headroom))
