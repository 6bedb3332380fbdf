"""One submission in one fresh sandbox: compile once, then a fresh process per test.

The host side of a judging session (the protocol: :mod:`crucible_ray.judge.driver`). It only
runs and measures; deciding what a test's result means (comparison, verdicts) is the caller's,
which says after each test whether to go on (early stop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from crucible_ray.errors import SandboxFault
from crucible_ray.judge import driver
from crucible_ray.judge.driver import DriverProtocolError, ProcessReport, TestLimits
from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import stages
from crucible_ray.sandbox.backend import Outcome, Sandbox, SandboxBackend, SessionChannel
from crucible_ray.sandbox.compiling import compile_then_lower
from crucible_ray.sandbox.streams import Deadline

READY_TIMEOUT_S = 10.0  # the driver saving the code or answering "G"
BOOT_ALLOWANCE_S = 30.0  # a sandbox's boot, at most (the backends' BOOT_TIMEOUT_S)
RESET_ALLOWANCE_S = 5.0  # per test, beyond its wall clock: the driver's reset and report
SETTLE_S = 1.0  # the longest a test waits for the previous one's memory to be returned
SETTLE_MARGIN_BYTES = 16 << 20


@dataclass(frozen=True)
class SandboxEnded:
    """The sandbox ended while a test ran, without the driver's report: out of memory (the
    memory cgroup kills gVisor's whole sandbox), stopped from the host (``killed``), or the
    test's program took the driver down (neither)."""

    oom_killed: bool
    killed: bool
    tampered: bool = False  # what came back was not the driver's report
    stuck: bool = False  # no report long after the test's wall clock


@dataclass
class SessionOutcome:
    compile: stages.CompileOutcome | None = None
    ended_in_compile: Outcome | None = None  # the program never ran (compile error...)
    results: list[ProcessReport | SandboxEnded] = field(default_factory=list)

    @property
    def sandbox_ended(self) -> bool:
        return bool(self.results) and isinstance(self.results[-1], SandboxEnded)


@dataclass(frozen=True)
class TestInput:
    __test__ = False  # not a pytest test class

    stdin: bytes
    limits: TestLimits
    mode: str = "stdio"
    payload: bytes = b""  # function and assert tests (crucible_ray.judge.driver)
    token: str | None = None  # assert tests: what the checker reports when the test passed


def run_session(
    backend: SandboxBackend,
    sandbox: Sandbox,
    spec: LanguageSpec,
    policy: SandboxPolicy,
    code: bytes,
    tests: Iterable[TestInput],
    keep_going: Callable[[int, ProcessReport], bool],
    frame_limit: int | None = None,
) -> SessionOutcome:
    """Run ``tests`` in order in ``sandbox`` (prepared from ``driver.driver_spec(spec)``),
    asking ``keep_going(index, report)`` after each. Stops at the first test the sandbox does
    not survive. Raises SandboxFault when the sandbox broke before any test ran (safe to retry
    elsewhere). ``tests`` may be an iterator that blocks until its next test is known (then
    ``frame_limit`` must be given: the largest report any of them may send)."""
    if frame_limit is None:
        tests = list(tests)
        frame_limit = max((driver.frame_limit(t.limits) for t in tests), default=1 << 16)
    channel = backend.session(sandbox, frame_limit)
    outcome = SessionOutcome()
    try:
        if spec.compile is None:
            channel.send_code(driver.code_message(code))
            _expect_go(channel, "before the program started")
        else:
            compiled = compile_then_lower(
                channel, code, spec.compile, policy, oom_fired=channel.oom_fired,
                kill=sandbox.kill, cgroup=channel.cgroup(), pids_headroom=channel.pids_headroom,
                reset_output=channel.reset_output,
            )  # fmt: skip
            if isinstance(compiled, Outcome):
                outcome.compile, outcome.ended_in_compile = compiled.compile, compiled
                return outcome
            outcome.compile = compiled
            channel.send_code(stages.go_line(policy))
            _expect_go(channel, "after the compile stage")
        baseline = _memory_in_use(channel)
        for index, test in enumerate(tests):
            if index:
                _settle(channel, baseline)
                if channel.oom_fired():  # the previous test ran the sandbox out of memory
                    outcome.results[-1] = SandboxEnded(oom_killed=True, killed=sandbox.killed)
                    break
            result = _run_test(channel, sandbox, test)
            if isinstance(result, ProcessReport) and channel.oom_fired():
                # Its process ended, but the memory cgroup killed something meanwhile (the
                # sandbox is ending): the report does not stand for what the test did.
                result = SandboxEnded(oom_killed=True, killed=sandbox.killed)
            outcome.results.append(result)
            if isinstance(result, SandboxEnded) or not keep_going(index, result):
                break
        channel.end_input()
        return outcome
    finally:
        channel.close()


def _memory_in_use(channel: SessionChannel) -> int | None:
    try:
        return int((channel.cgroup()["memory"] / "memory.usage_in_bytes").read_text())
    except (KeyError, OSError, ValueError):
        return None


def _settle(channel: SessionChannel, baseline: int | None) -> None:
    """Wait (briefly) until the sandbox is back near the memory it held before the first
    test: gVisor returns what a test's process freed to the host a moment after it exits, and
    the next test must not start with the previous one's memory still charged to it."""
    if baseline is None:
        return
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        used = _memory_in_use(channel)
        if used is None or used <= baseline + SETTLE_MARGIN_BYTES:
            return
        time.sleep(0.005)


def _expect_go(channel: SessionChannel, when: str) -> None:
    channel.reset_output(1 << 12)
    try:
        ack = channel.read_stderr(1, time.monotonic() + READY_TIMEOUT_S)
    except Deadline:
        ack = b""
    if ack[:1] != b"G":
        raise SandboxFault(f"sandbox died {when}")
    channel.reset_output(1 << 12)  # the driver writes nothing more on stderr


def _run_test(channel: SessionChannel, sandbox: Sandbox,
              test: TestInput) -> ProcessReport | SandboxEnded:  # fmt: skip
    limits, nonce = test.limits, driver.new_nonce()
    channel.send_code(
        driver.test_message(limits, test.stdin, nonce, test.mode, test.payload, test.token)
    )
    deadline = time.monotonic() + limits.wall_s + RESET_ALLOWANCE_S

    def take(size: int) -> bytes:
        data = channel.read_stdout(size, deadline)
        if len(data) < size:
            raise _OutputEnded
        return data

    try:
        header = take(driver.report_length(take(driver.REPORT_PREFIX)))
        fields = driver.parse_report(header, limits, nonce)
        stdout = take(fields.pop("stdout_bytes"))
        stderr = take(fields.pop("stderr_bytes"))
        result = take(fields.pop("result_bytes"))
    except _OutputEnded:
        return SandboxEnded(oom_killed=channel.oom_fired(), killed=sandbox.killed)
    except Deadline:
        # The driver enforces the wall clock itself; one that answers nothing by then is stuck
        # or gone, and the test's program is the only thing that ran in it meanwhile.
        sandbox.kill()
        return SandboxEnded(oom_killed=channel.oom_fired(), killed=False, stuck=True)
    except DriverProtocolError:
        sandbox.kill()
        return SandboxEnded(oom_killed=False, killed=False, tampered=True)
    return ProcessReport(stdout=stdout, stderr=stderr, result=result, **fields)


class _OutputEnded(Exception):
    """The sandbox's output ended in the middle of a report."""
