"""The host's half of the judge driver's protocol (the driver: ``images/launchers/judge.py``).

A judge sandbox boots the image's judge driver instead of its launcher (:func:`driver_spec`;
same image, same policy). The driver writes ``R`` on stderr once ready. Then::

    host   -> "<length>\\n" <code>                       the submission, saved as its source file
    driver -> "G" (stderr)                              it has the code
  compiled languages only, exactly as launch-compiled.sh (crucible_ray.sandbox.stages):
    driver -> "C" <status> <log length> <cut> <log>     the compile report (stderr)
    host   -> "<process limit>\\n"                       once the run's limits are in place
    driver -> "G" (stderr)
  then, once per test, until the host closes stdin:
    host   -> <8-digit length> <JSON header: TestLimits, mode, nonce...> <stdin> <payload>
    driver -> "T" <8-digit length> <JSON report> <stdout> <stderr> <result>     (stdout)

The payload and result by mode (the values: typed JSON, ``encode``/``decode`` in the driver's
file, loaded here by :mod:`crucible_ray.judge.calls`):
  stdio     none
  function  payload: the call's frame; result: the solution host's frames (its functions'
            names or its import error, then the call's answer)
  assert    payload: {"code", "candidate"}; result: the checker's outcome, with the test's
            token when the test passed (the header's token: neither the program nor anything
            it writes knows it)

Each test's header carries a fresh nonce that its report must echo (:func:`new_nonce`): the
program can write into the driver's pipes (gVisor shows another process's fds to the same
user) but cannot read its memory, so nothing it writes passes for a report.

Before each test the driver kills every process but itself, empties every writable directory
and restores the source (or the compiled program) from its own copy; the test's program runs
in a fresh process with the test's CPU limit (RLIMIT_CPU), wall clock and output cap. The
program's output reaches the host only inside the driver's report, and expected answers never
enter the sandbox.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from crucible_ray.languages import JUDGE_DRIVER, LanguageSpec

DRIVER_PATH = f"/opt/crucible/{JUDGE_DRIVER}"
DRIVER_VERSION = "3"
REPORT_PREFIX = 9  # "T" + 8 digits
MAX_REPORT_HEADER = 4096  # the JSON report's bytes, at most


class DriverProtocolError(Exception):
    """What came out of the sandbox is not the driver's protocol (a broken or tampered
    sandbox)."""


@dataclass(frozen=True)
class TestLimits:
    """One test's limits, as the driver enforces them."""

    __test__ = False  # not a pytest test class

    wall_s: float
    cpu_s: float
    stdout_bytes: int  # past this the program is stopped: output limit exceeded
    stderr_bytes: int  # kept; more is counted and dropped


@dataclass(frozen=True)
class ProcessReport:
    """What the driver measured of one test's process."""

    exit_code: int | None  # None when a signal ended it
    signal: int | None
    cpu_ms: float
    wall_ms: float
    max_rss_kb: int
    wall_killed: bool
    output_exceeded: bool
    stdout: bytes
    stderr: bytes
    stdout_total: int
    stderr_total: int
    result: bytes = b""  # function and assert tests (see the module's doc)
    checker_exit: int | None = None  # assert tests: how the checker ended
    checker_signal: int | None = None


def plan(spec: LanguageSpec) -> dict[str, Any]:
    """What the driver needs to know of the language: where the source goes, how it compiles,
    how each test's process starts, and in which directory."""
    if spec.compile is not None:
        return {"source": f"/build/{spec.source_file}", "compile": spec.compile.command,
                "run": list(spec.compile.run), "cwd": "/build"}  # fmt: skip
    if not spec.judge_run:
        raise ValueError(f"{spec.name} has no judge_run command")
    serve = list(spec.judge_serve) or None
    paths = serve[serve.index("--serve") + 2 :] if serve else []  # the checker's too
    return {"source": f"/tmp/{spec.source_file}", "compile": None, "run": list(spec.judge_run),
            "cwd": "/tmp", "serve": serve, "paths": paths,
            "fork": list(spec.judge_fork) or None}  # fmt: skip


def driver_spec(spec: LanguageSpec) -> LanguageSpec:
    """``spec`` with its sandbox booting the judge driver instead of the launcher: the same
    image (the command is not among an image's inputs), the same limits."""
    command = ("/usr/bin/python3", "-I", "-S", "-B", DRIVER_PATH,
               json.dumps(plan(spec), separators=(",", ":")))  # fmt: skip
    return replace(spec, command=command)


def code_message(code: bytes) -> bytes:
    return b"%d\n" % len(code) + code


def new_nonce() -> str:
    """A test's nonce: the driver echoes it in the test's report, and nothing else in the
    sandbox can learn it (the program cannot read the driver's memory)."""
    return secrets.token_hex(16)


def test_message(limits: TestLimits, stdin: bytes, nonce: str, mode: str = "stdio",
                 payload: bytes = b"", token: str | None = None) -> bytes:  # fmt: skip
    fields = {"stdin_bytes": len(stdin), "nonce": nonce, "mode": mode,
              "payload_bytes": len(payload), "token": token}  # fmt: skip
    header = json.dumps({**asdict(limits), **fields}).encode()
    return b"%08d" % len(header) + header + stdin + payload


def report_length(prefix: bytes) -> int:
    """The JSON report's length from a report's first bytes ("T" + 8 digits)."""
    if len(prefix) != REPORT_PREFIX or prefix[:1] != b"T" or not prefix[1:].isdigit():
        raise DriverProtocolError(f"not a test report: {prefix[:REPORT_PREFIX]!r}")
    length = int(prefix[1:])
    if length > MAX_REPORT_HEADER:
        raise DriverProtocolError(f"test report header of {length} bytes")
    return length


_INT_FIELDS = ("max_rss_kb", "stdout_bytes", "stdout_total", "stderr_bytes", "stderr_total",
               "result_bytes")  # fmt: skip


def parse_report(header: bytes, limits: TestLimits, nonce: str) -> dict[str, Any]:
    """The report's fields, checked against the limits and nonce the test was sent with; its
    ``stdout_bytes`` and ``stderr_bytes`` say how much output follows."""
    try:
        fields = json.loads(header)
        if not isinstance(fields, dict) or not isinstance(fields.get("nonce"), str):
            raise TypeError
        if not hmac.compare_digest(fields.pop("nonce"), nonce):
            raise DriverProtocolError("a test report that is not the driver's (wrong nonce)")
        for name in _INT_FIELDS:
            if type(fields[name]) is not int or fields[name] < 0:
                raise TypeError
        for name in ("exit_code", "signal", "checker_exit", "checker_signal"):
            if fields[name] is not None and type(fields[name]) is not int:
                raise TypeError
        for name in ("cpu_ms", "wall_ms"):
            fields[name] = float(fields[name])
        for name in ("wall_killed", "output_exceeded"):
            if type(fields[name]) is not bool:
                raise TypeError
    except (ValueError, TypeError, KeyError):
        raise DriverProtocolError("malformed test report") from None
    if (fields["stdout_bytes"] > limits.stdout_bytes or fields["stderr_bytes"] > limits.stderr_bytes
            or fields["result_bytes"] > limits.stdout_bytes):  # fmt: skip
        raise DriverProtocolError("a test report with more output than its limits")
    return fields


def frame_limit(limits: TestLimits) -> int:
    """The most a test's report can hold: what the host buffers of the sandbox's stdout."""
    return REPORT_PREFIX + MAX_REPORT_HEADER + 2 * limits.stdout_bytes + limits.stderr_bytes
