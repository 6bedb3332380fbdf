"""Custom checkers: how a check's process report reads as a verdict, and the request rules."""

from __future__ import annotations

import json
import signal

import pytest
from pydantic import ValidationError

from crucible_ray.judge.checkers import checked, checker_stdin
from crucible_ray.judge.driver import ProcessReport
from crucible_ray.judge.models import JudgeRequest
from crucible_ray.judge.session import SandboxEnded
from crucible_ray.judge.verdicts import Verdict

CHECKER = {"code": "print('AC')\n"}
TESTS = [{"stdin": "3", "expected_stdout": "1 2"}]


def report(stdout: bytes = b"", exit_code: int | None = 0, **facts) -> ProcessReport:
    fields = {"signal": None, "cpu_ms": 30.0, "wall_ms": 40.0, "max_rss_kb": 9000,
              "wall_killed": False, "output_exceeded": False, "stderr": b"",
              "stdout_total": len(stdout), "stderr_total": 0, **facts}  # fmt: skip
    return ProcessReport(exit_code=exit_code, stdout=stdout, **fields)


@pytest.mark.parametrize(
    ("stdout", "verdict", "score", "message"),
    [
        (b"AC\n", Verdict.AC, None, None),
        (b"AC two numbers summing to 3\n", Verdict.AC, None, "two numbers summing to 3"),
        (b"WA", Verdict.WA, None, "the checker rejected it"),
        (b"WA 2 + 3 is not 3\nmore\n", Verdict.WA, None, "2 + 3 is not 3"),
        (b"PA 0.25 one of four parts\n", Verdict.PA, 0.25, "one of four parts"),
        (b"PA 0.5\n", Verdict.PA, 0.5, None),
        (b"PA 1 all of it\n", Verdict.AC, None, "all of it"),
        (b"PA 0\n", Verdict.WA, None, "the checker rejected it"),
    ],
)
def test_a_checks_first_word_gives_the_verdict(stdout, verdict, score, message):
    outcome = checked(report(stdout), cpu_s=2.0)
    assert (outcome.verdict.verdict, outcome.score, outcome.verdict.message) == (
        verdict, score, message)  # fmt: skip


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (report(b"WA\n", exit_code=1), "exit code 1"),  # a Python checker's crash
        (report(b"AC\n", exit_code=2), "exit code 2"),
        (report(b"", exit_code=0), "no verdict"),
        (report(b"ok\n", exit_code=0), "no verdict"),
        (report(b"AC\n", exit_code=None, signal=signal.SIGSEGV), "SIGSEGV"),
        (report(b"AC\n", wall_killed=True), "time limit"),
        (report(b"AC\n", cpu_ms=2500.0), "time limit"),
        (report(b"AC\n", output_exceeded=True), "output limit"),
        (report(b"PA 1.5 too generous\n"), "without a score from 0 to 1: '1.5'"),
        (report(b"PA nan\n"), "'nan'"),
        (report(b"PA -0.1\n"), "'-0.1'"),
        (report(b"PA half\n"), "'half'"),
        (SandboxEnded(oom_killed=True, killed=True), "sandbox ended"),
        (None, "sandbox ended"),
    ],
)
def test_a_checker_that_fails_is_an_internal_error_never_the_programs_verdict(given, why):
    outcome = checked(given, cpu_s=2.0)
    assert outcome.verdict.verdict is Verdict.IE and outcome.score is None
    assert (
        outcome.verdict.message.startswith("the checker failed") and why in outcome.verdict.message
    )


def test_the_checker_reads_the_input_the_output_and_the_answer_as_one_json_object():
    stdin = checker_stdin("3\n", b"1 2\n\xff", "1 2")
    assert json.loads(stdin) == {"input": "3\n", "output": "1 2\n\ufffd", "answer": "1 2"}


def test_a_checker_is_for_stdio_tests_and_replaces_compare():
    request = JudgeRequest(code="x", tests=TESTS, checker=CHECKER)
    assert JudgeRequest.model_validate(request.model_dump()) == request  # a dump validates
    with pytest.raises(ValidationError, match="checker: stdio only"):
        JudgeRequest(code="x", mode="function", entry_point="f", tests=[{"args": [1]}],
                     checker=CHECKER)  # fmt: skip
    with pytest.raises(ValidationError, match="checker or compare"):
        JudgeRequest(code="x", tests=TESTS, checker=CHECKER, compare={"mode": "tokens"})
