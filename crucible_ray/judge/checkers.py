"""Custom checkers: a program of the problem's author judges each stdio test's output, in a
fresh sandbox of its own (never the submission's), after the submission's tests ran.

The submission's run decides everything about the process (TLE, MLE, RE...); for each test
it ended cleanly, the checker gets the test's input, the program's output and the expected
answer, and its exit code and score decide AC, PA or WA, before the next test runs. A checker
that fails is IE (the problem's fault, not the program's: the score becomes null). The
protocol is the model's (:class:`crucible_ray.judge.models.JudgeChecker`); :func:`checked` is
its pure reading, :class:`LiveChecker` its sandbox.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from dataclasses import dataclass
from typing import Any

from crucible_ray.judge import driver
from crucible_ray.judge.driver import ProcessReport, TestLimits
from crucible_ray.judge.models import JudgeChecker, JudgeRequest
from crucible_ray.judge.session import BOOT_ALLOWANCE_S, SandboxEnded, TestInput, run_session
from crucible_ray.judge.verdicts import TestVerdict, Verdict, signal_name
from crucible_ray.languages import LanguageSpec, get_image
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.runner import SandboxRunner

log = logging.getLogger(__name__)
CHECKER_VERSION = "1"
OUTPUT_BYTES = 64 << 10  # a checker's stdout and stderr, kept per check
MESSAGE_CHARS = 200


@dataclass(frozen=True)
class Checked:
    verdict: TestVerdict
    score: float | None = None  # PA's


def checker_spec(checker: JudgeChecker) -> LanguageSpec:
    return get_image(checker.language, checker.image)  # UnsupportedLanguage: InvalidRequest


def checker_limits(checker: JudgeChecker, policy: SandboxPolicy) -> TestLimits:
    return TestLimits(wall_s=checker.cpu_s / min(policy.cpus, 1.0) + 1.0, cpu_s=checker.cpu_s,
                      stdout_bytes=OUTPUT_BYTES, stderr_bytes=OUTPUT_BYTES)  # fmt: skip


def checker_stdin(test_stdin: str, output: bytes, answer: str) -> bytes:
    """What the checker reads for one test."""
    content = {"input": test_stdin, "output": output.decode("utf-8", errors="replace"),
               "answer": answer}  # fmt: skip
    return json.dumps(content, ensure_ascii=False).encode()


def checked(report: ProcessReport | SandboxEnded | None, cpu_s: float) -> Checked:
    """What one check says of the test's output."""
    if not isinstance(report, ProcessReport):
        return _failed("its sandbox ended during the check")
    if report.wall_killed or report.cpu_ms > cpu_s * 1000:
        return _failed("it exceeded its time limit")
    if report.signal is not None:
        return _failed(f"killed by {signal_name(report.signal)}")
    if report.output_exceeded:
        return _failed("it exceeded its output limit")
    if report.exit_code != 0:
        return _failed(f"exit code {report.exit_code}")
    line = report.stdout.decode("utf-8", errors="replace").partition("\n")[0].strip()
    word, _, rest = line.partition(" ")
    if word == "AC":
        return Checked(TestVerdict(Verdict.AC, message=rest.strip()[:MESSAGE_CHARS] or None))
    if word == "WA":
        message = rest.strip()[:MESSAGE_CHARS] or "the checker rejected it"
        return Checked(TestVerdict(Verdict.WA, message=message))
    if word != "PA":
        return _failed(f"no verdict (AC, WA or PA) on its first line: {line[:40]!r}")
    token, _, rest = rest.strip().partition(" ")
    try:
        score = float(token)
    except ValueError:
        score = math.nan
    if not 0.0 <= score <= 1.0:  # (nan too)
        return _failed(f"PA without a score from 0 to 1: {token[:20]!r}")
    message = rest.strip()[:MESSAGE_CHARS] or None
    if score == 1.0:
        return Checked(TestVerdict(Verdict.AC, message=message))
    if score == 0.0:
        return Checked(TestVerdict(Verdict.WA, message=message or "the checker rejected it"))
    return Checked(TestVerdict(Verdict.PA, message=message), score)


def _failed(why: str) -> Checked:
    return Checked(TestVerdict(Verdict.IE, message=f"the checker failed: {why}"))


class LiveChecker:
    """The checker's session for one judging: a fresh sandbox of its own, booted (and the
    checker compiled) at the first output to check, then one check per test in step with the
    submission's tests, so that an early stop stops both. Its session runs in a thread of its
    own, fed one test at a time."""

    def __init__(self, runner: SandboxRunner, request: JudgeRequest, judge_id: str) -> None:
        assert request.checker is not None
        self.checker, self.request, self.runner, self.judge_id = (
            request.checker, request, runner, judge_id)  # fmt: skip
        self.spec = checker_spec(self.checker)
        self.policy = runner.policy.for_language(self.spec.policy_overrides)
        self.limits = checker_limits(self.checker, self.policy)
        self.started = False
        self._inputs: queue.Queue[TestInput | None] = queue.Queue()
        self._answers: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._session, name="checker", daemon=True)
        self._ended: Checked | None = None  # once its session is over, every later check

    def check(self, index: int, output: bytes) -> Checked:
        """The checker's verdict on test ``index``'s output (IE for this and every later test
        once the checker's sandbox failed or ended)."""
        if self._ended is not None:
            return self._ended
        if not self.started:
            self.started = True
            self._thread.start()
        test = self.request.tests[index]
        stdin = checker_stdin(test.stdin, output, test.expected_stdout or "")
        self._inputs.put(TestInput(stdin, self.limits))
        try:
            answer = self._answers.get(timeout=self._longest_s())
        except queue.Empty:
            answer = _failed("it did not answer in time")
        if isinstance(answer, ProcessReport):
            return checked(answer, self.checker.cpu_s)
        if isinstance(answer, BaseException):  # from the host's side: the platform's fault
            log.warning("checker sandbox of judging %s failed: %s", self.judge_id, answer)
            answer = _failed("its sandbox failed")
        self._ended = answer if isinstance(answer, Checked) else _failed("its sandbox ended")
        return self._ended

    def close(self) -> None:
        if self.started:
            self._inputs.put(None)
            self._thread.join(timeout=self._longest_s())

    def _longest_s(self) -> float:
        """A check's longest wait: the checker booted and compiled, then its wall clock."""
        return BOOT_ALLOWANCE_S + self.spec.compile_time_s + 2 * self.limits.wall_s + 10.0

    def _session(self) -> None:
        def answer(_index: int, report: ProcessReport) -> bool:
            self._answers.put(report)
            return True

        inputs = iter(self._inputs.get, None)  # blocks until the next output to check
        code = self.checker.code.encode()
        try:
            with self.runner.sandbox_for(driver.driver_spec(self.spec), self.judge_id) as sandbox:
                outcome = run_session(self.runner.backend, sandbox, self.spec, self.policy, code,
                                      inputs, answer, driver.frame_limit(self.limits))  # fmt: skip
            if outcome.ended_in_compile is not None:
                self._answers.put(_failed("it did not compile"))
        except Exception as exc:  # delivered to the judging's thread
            self._answers.put(exc)
        finally:
            self._answers.put(None)  # its session is over: every later check fails
