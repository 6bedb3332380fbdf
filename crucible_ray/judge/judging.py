"""Judging one submission: its tests run in one fresh sandbox, compared and scored on the host.

The flow is one way: the request is checked against the policy, the session runs the tests
(:mod:`.session`), each report becomes a verdict (:mod:`.compare`, :mod:`.verdicts`), and the
verdicts a result. A sandbox the program takes down (out of memory, a killed driver) ends
that test; when the request does not stop at the first failure, the remaining tests go on in
another fresh sandbox (at most MAX_SANDBOXES, each compiling again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from crucible_ray.errors import (
    EngineInterrupted,
    InvalidRequest,
    SandboxFault,
)
from crucible_ray.judge import calls, driver
from crucible_ray.judge.compare import COMPARE_VERSION, compare
from crucible_ray.judge.driver import ProcessReport, TestLimits
from crucible_ray.judge.models import (
    JudgeRequest,
    JudgeResult,
    JudgeTest,
    MismatchInfo,
    TestResult,
)
from crucible_ray.judge.session import (
    RESET_ALLOWANCE_S,
    SandboxEnded,
    SessionOutcome,
    TestInput,
    run_session,
)
from crucible_ray.judge.testsets import canonical_tests
from crucible_ray.judge.verdicts import (
    Facts,
    TestVerdict,
    Verdict,
    overall,
    signal_name,
    verdict_of,
)
from crucible_ray.languages import LanguageSpec, get_image
from crucible_ray.models import CompileResult, EvalStatus, new_eval_id, utcnow
from crucible_ray.policy import SandboxPolicy
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.sandbox.backend import BackendFailed
from crucible_ray.sandbox.runner import SandboxRunner

log = logging.getLogger(__name__)

BOOT_ALLOWANCE_S = 30.0  # a sandbox's boot, at most (the backends' BOOT_TIMEOUT_S)
MAX_SANDBOXES = 3  # per request: a program that takes each one down does not get more
FAULT_ATTEMPTS = 2  # a sandbox that breaks before any test ran is replaced once
PREVIEW_BYTES = 1024
STDERR_BYTES = 64 * 1024  # kept per test (more is counted and dropped)
# A process that fails with a peak this close to the sandbox's memory limit ran out of it (an
# allocation failed) rather than crashing: the sandbox itself (gVisor, the driver) holds the
# rest of the limit.
NEAR_MEMORY_LIMIT = 0.75


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
    return MAX_SANDBOXES * per_sandbox + tests


def check_request(request: JudgeRequest, policy: SandboxPolicy, spec: LanguageSpec) -> None:
    """Refuse what the policy does not allow, a mode the language has no driver for, and
    answers the comparison cannot use."""
    policy.check_code_size(request.code)
    check_test_data(request.tests, policy)
    if request.mode != "stdio" and not spec.judge_serve:
        raise InvalidRequest(f"mode {request.mode} is for Python (language {spec.language} "
                             "has stdio tests only)", field="mode")  # fmt: skip
    for index, test in enumerate(request.tests):
        if len(test.stdin.encode()) > policy.stdin_limit_bytes:
            raise InvalidRequest(f"stdin exceeds {policy.stdin_limit_bytes} bytes",
                                 field=f"tests[{index}].stdin")  # fmt: skip
        if request.mode == "stdio":
            try:
                compare("", test.expected_stdout or "", request.compare)
            except ValueError as exc:  # an answer that is not JSON, or a pattern no regex
                raise InvalidRequest(str(exc), field=f"tests[{index}].expected_stdout") from None
        elif len(_payload(request, index)) > policy.stdin_limit_bytes:
            field = "code" if request.mode == "assert" else "args"
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


def _payload(request: JudgeRequest, index: int) -> bytes:
    test = request.tests[index]
    if request.mode == "function":
        assert request.entry_point is not None  # the request's validation
        return calls.function_payload(request.entry_point, test.args, test.kwargs)
    if request.mode == "assert":
        return calls.assert_payload(test.code or "", request.entry_point)
    return b""


def _inputs(request: JudgeRequest, limits: list[TestLimits]) -> list[TestInput]:
    token = driver.new_nonce if request.mode == "assert" else lambda: None
    return [
        TestInput(test.stdin.encode(), lim, request.mode, _payload(request, index), token())
        for index, (test, lim) in enumerate(zip(request.tests, limits, strict=True))
    ]


def judge(runner: SandboxRunner, request: JudgeRequest, judge_id: str | None = None) -> JudgeResult:
    """Judge ``request`` on ``runner``'s backend. Raises InvalidRequest for a bad request and
    SandboxUnavailable/SandboxStartFailed when no sandbox could start (nothing was judged);
    every other failure is a result with status ``error``."""
    judge_id = judge_id or new_eval_id()
    spec = get_image(request.language, request.image)
    policy = runner.policy.for_language(spec.policy_overrides)
    check_request(request, policy, spec)
    limits = test_limits(request, policy)
    started = time.monotonic()
    result = JudgeResult(id=judge_id, status=EvalStatus.RUNNING, language=spec.language,
                         image=spec.name, runtime=runner.runtime, backend=runner.backend.name,
                         compare_version=COMPARE_VERSION, driver_version=driver.DRIVER_VERSION,
                         total=len(request.tests))  # fmt: skip
    verdicts: dict[int, Judged] = {}
    try:
        compiled, sandboxes, run_does_not_fit = _run_all(
            runner, request, spec, policy, limits, judge_id, verdicts
        )
    except EngineInterrupted as exc:
        log.warning("judging %s interrupted: %s", judge_id, exc)
        return _failed(result, Reason.ENGINE_INTERRUPTED, started)
    except BackendFailed as exc:
        log.warning("backend failed while judging %s: %s", judge_id, exc)
        return _failed(result, Reason.ENGINE_FAILED, started)
    except SandboxFault as exc:
        log.warning("sandbox fault while judging %s: %s", judge_id, exc)
        return _failed(result, Reason.SANDBOX_FAULT, started)
    finally:
        cancelled = runner.was_cancelled(judge_id)
        security = runner.security_of(judge_id)
        runner.forget(judge_id)
    tests = [_test_result(i, request, verdicts.get(i)) for i in range(len(request.tests))]
    if compiled is not None and compiled.status != "ok":
        scored_verdict, score, passed, first = Verdict.CE, 0.0, 0, None
    elif run_does_not_fit:  # built, but the program alone is over the run's memory
        scored_verdict, score, passed, first = Verdict.MLE, 0.0, 0, None
    else:
        scored = overall([t.verdict for t in tests], request.scoring,
                         weights=[t.weight for t in request.tests],
                         groups=[t.group for t in request.tests],
                         points=request.subtask_points)  # fmt: skip
        scored_verdict, score, passed, first = (scored.verdict, scored.score, scored.passed,
                                                scored.first_failure)  # fmt: skip
    status = EvalStatus.CANCELLED if cancelled else EvalStatus.SUCCEEDED
    return result.model_copy(update={
        "status": status, "verdict": None if cancelled else scored_verdict,
        "score": None if cancelled else score, "passed": passed, "first_failure": first,
        "compile": compiled, "tests": tests, "sandboxes": sandboxes, "security": security,
        "duration_ms": round((time.monotonic() - started) * 1000, 3), "finished_at": utcnow(),
    })  # fmt: skip


def _run_all(runner: SandboxRunner, request: JudgeRequest, spec: LanguageSpec,
             policy: SandboxPolicy, limits: list[TestLimits], judge_id: str,
             verdicts: dict[int, Judged],
             ) -> tuple[CompileResult | None, int, bool]:  # fmt: skip
    """Run the tests, in as many fresh sandboxes as it takes: the compile result, how many
    sandboxes ran, and whether the built program did not fit in the run's memory."""
    compiled: CompileResult | None = None
    code = request.code.encode()
    inputs = _inputs(request, limits)
    next_test, sandboxes, faults = 0, 0, 0
    while next_test < len(inputs) and sandboxes < MAX_SANDBOXES:
        first = next_test

        def keep_going(offset: int, report: ProcessReport, first: int = first) -> bool:
            index = first + offset
            verdict = _judged(request, spec, inputs[index], index, report, policy.memory_mb << 10)
            verdicts[index] = (verdict, report)
            return verdict.verdict is Verdict.AC or not request.stop_on_first_failure

        try:
            with runner.sandbox_for(driver.driver_spec(spec), judge_id) as sandbox:
                sandboxes += 1
                outcome = run_session(runner.backend, sandbox, spec, policy, code,
                                      inputs[first:], keep_going)  # fmt: skip
        except SandboxFault:
            faults += 1
            if faults >= FAULT_ATTEMPTS or runner.was_cancelled(judge_id):
                raise
            continue
        if compiled is None and outcome.compile is not None:
            compiled = _compile_result(outcome)
        if outcome.ended_in_compile is not None:
            return compiled, sandboxes, compiled is not None and compiled.status == "ok"
        if runner.was_cancelled(judge_id):
            break
        next_test = first + len(outcome.results)
        last = outcome.results[-1] if outcome.results else None
        if isinstance(last, SandboxEnded):
            verdict = verdict_of(_ended_facts(last), limits[next_test - 1].cpu_s, None)
            verdicts[next_test - 1] = (verdict, None)
            if verdict.verdict is not Verdict.IE and request.stop_on_first_failure:
                break
            if verdict.verdict is Verdict.IE:
                break
        else:
            break  # every test ran, or the request stopped at a failure
    return compiled, sandboxes, False


def _judged(request: JudgeRequest, spec: LanguageSpec, test: TestInput, index: int,
            report: ProcessReport, memory_kb: int) -> TestVerdict:  # fmt: skip
    stderr = report.stderr.decode("utf-8", errors="replace")
    outcome = _outcome(request, test, index, report)
    facts = Facts(exit_code=report.exit_code, signal=report.signal, cpu_ms=report.cpu_ms,
                  wall_killed=report.wall_killed, output_exceeded=report.output_exceeded,
                  heap_exhausted=spec.ran_out_of_heap(report.exit_code, stderr),
                  near_memory_limit=report.max_rss_kb >= NEAR_MEMORY_LIMIT * memory_kb,
                  tampered=outcome.tampered, program_error=outcome.error)  # fmt: skip
    return verdict_of(facts, test.limits.cpu_s, outcome.comparison)


def _outcome(request: JudgeRequest, test: TestInput, index: int,
             report: ProcessReport) -> calls.Outcome:  # fmt: skip
    """What the test's output or result says, before the process's own facts."""
    if request.mode == "function":
        expected = request.tests[index].expected
        return calls.function_outcome(report.result, expected, request.compare)
    if request.mode == "assert":
        assert test.token is not None
        return calls.assert_outcome(report.result, test.token, report.checker_signal)
    output = report.stdout.decode("utf-8", errors="replace")
    expected = request.tests[index].expected_stdout or ""
    return calls.Outcome(compare(output, expected, request.compare))


def _ended_facts(ended: SandboxEnded) -> Facts:
    return Facts(sandbox_oom=ended.oom_killed, sandbox_ended=True, sandbox_stuck=ended.stuck,
                 tampered=ended.tampered,
                 stopped_by_host=ended.killed and not ended.oom_killed)  # fmt: skip


Judged = tuple[TestVerdict, ProcessReport | None]


def _test_result(index: int, request: JudgeRequest, judged: Judged | None) -> TestResult:
    test_id = request.tests[index].id
    if judged is None:
        return TestResult(index=index, id=test_id, verdict=Verdict.SKIPPED)
    verdict, report = judged
    fields: dict = {"index": index, "id": test_id, "verdict": verdict.verdict,
                    "limit": verdict.limit, "message": verdict.message}  # fmt: skip
    mismatch = verdict.mismatch
    if mismatch is not None:
        fields["mismatch"] = MismatchInfo(line=mismatch.line, column=mismatch.column,
                                          expected=mismatch.expected, got=mismatch.got)  # fmt: skip
    if report is not None:
        fields.update(
            cpu_ms=report.cpu_ms, wall_ms=report.wall_ms, memory_kb=report.max_rss_kb,
            exit_code=report.exit_code, signal=signal_name(report.signal),
            stdout_preview=report.stdout[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
            stderr_preview=report.stderr[:PREVIEW_BYTES].decode("utf-8", errors="replace"),
            stdout_bytes=report.stdout_total,
        )  # fmt: skip
    return TestResult(**fields)


def _compile_result(outcome: SessionOutcome) -> CompileResult:
    compiled = outcome.compile
    assert compiled is not None
    return CompileResult(status=compiled.status, exit_code=compiled.exit_code,
                         output=compiled.output, truncated=compiled.truncated,
                         duration_ms=round(compiled.duration_ms, 3))  # fmt: skip


def _failed(result: JudgeResult, reason: Reason, started: float) -> JudgeResult:
    return result.model_copy(update={
        "status": EvalStatus.ERROR, "verdict": Verdict.IE, "score": None,
        "duration_ms": round((time.monotonic() - started) * 1000, 3), "finished_at": utcnow(),
        **error_fields(reason),
    })  # fmt: skip
