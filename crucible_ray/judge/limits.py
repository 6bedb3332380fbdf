"""What a judge request may ask and how long it may take: the policy's checks (the
dispatcher's and the ingress's), each test's limits and the whole request's time budget.
Pure functions."""

from __future__ import annotations

import json
from collections.abc import Sequence

from crucible_ray.errors import InvalidRequest
from crucible_ray.judge import calls, checkers
from crucible_ray.judge.compare import compare
from crucible_ray.judge.driver import TestLimits
from crucible_ray.judge.models import JudgeRequest, JudgeTest
from crucible_ray.judge.session import BOOT_ALLOWANCE_S, RESET_ALLOWANCE_S
from crucible_ray.judge.testsets import canonical_tests
from crucible_ray.languages import LanguageSpec, get_image
from crucible_ray.policy import SandboxPolicy

MAX_SANDBOXES = 3  # per request: a program that takes each one down does not get more
STDERR_BYTES = 64 * 1024  # kept per test (more is counted and dropped)


def test_limits(request: JudgeRequest, policy: SandboxPolicy) -> list[TestLimits]:
    """Each test's limits: its own CPU limit or the request's, a wall clock that leaves room
    for that CPU at the sandbox's CPU share, and the request's output cap within the policy's."""
    limits = []
    for test in request.tests:
        cpu_s = test.cpu_s or request.limits.cpu_s
        wall_s = request.limits.wall_s or cpu_s / min(policy.cpus, 1.0) + 1.0
        stdout = min(request.limits.output_bytes, policy.output_limit_bytes)
        limits.append(TestLimits(wall_s=wall_s, cpu_s=cpu_s, stdout_bytes=stdout,
                                 stderr_bytes=STDERR_BYTES))  # fmt: skip
    return limits


def budget_s(request: JudgeRequest, policy: SandboxPolicy) -> float:
    """The longest judging ``request`` can take: every test to its wall clock and the driver's
    reset, and each sandbox it may take booted and compiled. Past it the executor is hung."""
    spec = get_image(request.language, request.image)
    per_sandbox = BOOT_ALLOWANCE_S + spec.compile_time_s
    tests = sum(lim.wall_s + RESET_ALLOWANCE_S for lim in test_limits(request, policy))
    if request.checker is not None:  # its own sandbox, then one check per test
        checker = checkers.checker_spec(request.checker)
        check = checkers.checker_limits(request.checker, policy).wall_s + RESET_ALLOWANCE_S
        tests += BOOT_ALLOWANCE_S + checker.compile_time_s + check * len(request.tests)
    return MAX_SANDBOXES * per_sandbox + tests


def check_request(request: JudgeRequest, policy: SandboxPolicy, spec: LanguageSpec) -> None:
    """Refuse what the policy does not allow, a mode the language has no driver for, and
    answers the comparison cannot use."""
    policy.check_code_size(request.code)
    check_test_data(request.tests, policy)
    if (request.limits.memory_mb or 0) > policy.memory_mb:
        raise InvalidRequest(f"limits.memory_mb exceeds the sandbox's {policy.memory_mb} MB "
                             f"for {spec.language}", field="limits.memory_mb")  # fmt: skip
    if request.checker is not None:
        try:
            checkers.checker_spec(request.checker)
        except InvalidRequest as exc:
            raise InvalidRequest(str(exc), field="checker.language") from None
        try:
            policy.check_code_size(request.checker.code)
        except InvalidRequest as exc:
            raise InvalidRequest(str(exc), field="checker.code") from None
    if request.mode in ("function", "assert") and not spec.judge_serve:
        raise InvalidRequest(f"mode {request.mode} is for Python (language {spec.language} "
                             "has stdio tests only)", field="mode")  # fmt: skip
    for index, test in enumerate(request.tests):
        if len(test.stdin.encode()) > policy.stdin_limit_bytes:
            raise InvalidRequest(f"stdin exceeds {policy.stdin_limit_bytes} bytes",
                                 field=f"tests[{index}].stdin")  # fmt: skip
        if spec.source_file in test.files:
            raise InvalidRequest(f"{spec.source_file} is the program's own file",
                                 field=f"tests[{index}].files")  # fmt: skip
        if request.mode == "stdio":
            try:
                compare("", test.expected_stdout or "", request.compare)
            except ValueError as exc:  # an answer that is not JSON, or a pattern no regex
                raise InvalidRequest(str(exc), field=f"tests[{index}].expected_stdout") from None
        elif len(payload(request, index)) > policy.stdin_limit_bytes:
            field = {"assert": "code", "command": "files"}.get(request.mode, "args")
            raise InvalidRequest(f"the test's {field} exceed {policy.stdin_limit_bytes} bytes",
                                 field=f"tests[{index}].{field}")  # fmt: skip


def check_test_data(tests: Sequence[JudgeTest], policy: SandboxPolicy,
                    canonical: bytes | None = None) -> int:  # fmt: skip
    """The tests' size as the policy counts it (their canonical JSON, if already made);
    InvalidRequest past its limit."""
    size = len(canonical if canonical is not None else canonical_tests(tests))
    if size > policy.test_data_limit_bytes:
        raise InvalidRequest(f"tests exceed {policy.test_data_limit_bytes} bytes of test data",
                             field="tests")  # fmt: skip
    return size


def payload(request: JudgeRequest, index: int) -> bytes:
    test = request.tests[index]
    if request.mode == "function":
        assert request.entry_point is not None  # the request's validation
        return calls.function_payload(request.entry_point, test.args, test.kwargs)
    if request.mode == "assert":
        return calls.assert_payload(test.code or "", request.entry_point)
    if request.mode == "command":
        return json.dumps({"command": test.command, "files": test.files}).encode()
    return b""
