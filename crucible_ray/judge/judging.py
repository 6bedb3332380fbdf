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

from crucible_ray.errors import (
    EngineInterrupted,
    SandboxFault,
)
from crucible_ray.judge import calls, checkers, driver
from crucible_ray.judge.compare import COMPARE_VERSION, Comparison, compare
from crucible_ray.judge.driver import ProcessReport, TestLimits
from crucible_ray.judge.limits import (
    MAX_SANDBOXES,
    check_request,
    payload,
    test_limits,
)
from crucible_ray.judge.models import (
    JudgeRequest,
    JudgeResult,
    MismatchInfo,
    TestResult,
)
from crucible_ray.judge.session import (
    SandboxEnded,
    SessionOutcome,
    TestInput,
    run_session,
)
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

FAULT_ATTEMPTS = 2  # a sandbox that breaks before any test ran is replaced once
PREVIEW_BYTES = 1024
# A process that fails with a peak this close to the sandbox's memory limit ran out of it (an
# allocation failed) rather than crashing: the sandbox itself (gVisor, the driver) holds the
# rest of the limit.
NEAR_MEMORY_LIMIT = 0.75


def _inputs(request: JudgeRequest, limits: list[TestLimits]) -> list[TestInput]:
    token = driver.new_nonce if request.mode == "assert" else lambda: None
    return [
        TestInput(test.stdin.encode(), lim, request.mode, payload(request, index), token())
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
    scores: dict[int, float] = {}
    checker = checkers.LiveChecker(runner, request, judge_id) if request.checker else None
    try:
        compiled, sandboxes, run_does_not_fit = _run_all(
            runner, request, spec, policy, limits, judge_id, verdicts, checker, scores
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
        if checker is not None:
            checker.close()
        cancelled = runner.was_cancelled(judge_id)
        security = runner.security_of(judge_id)
        runner.forget(judge_id)
    sandboxes += bool(checker and checker.started)
    tests = [_test_result(i, request, verdicts.get(i), scores.get(i))
             for i in range(len(request.tests))]  # fmt: skip
    if compiled is not None and compiled.status != "ok":
        scored_verdict, score, passed, first = Verdict.CE, 0.0, 0, None
    elif run_does_not_fit:  # built, but the program alone is over the run's memory
        scored_verdict, score, passed, first = Verdict.MLE, 0.0, 0, None
    else:
        scored = overall([t.verdict for t in tests], request.scoring,
                         weights=[t.weight for t in request.tests],
                         groups=[t.group for t in request.tests],
                         points=request.subtask_points,
                         test_scores=[t.score for t in tests])  # fmt: skip
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
             verdicts: dict[int, Judged], checker: checkers.LiveChecker | None,
             scores: dict[int, float]) -> tuple[CompileResult | None, int, bool]:  # fmt: skip
    """Run the tests, in as many fresh sandboxes as it takes: the compile result, how many
    sandboxes ran, and whether the built program did not fit in the run's memory. With a
    checker, each output its process ended cleanly with is checked before the next test."""
    compiled: CompileResult | None = None
    code = request.code.encode()
    inputs = _inputs(request, limits)
    next_test, sandboxes, faults = 0, 0, 0
    while next_test < len(inputs) and sandboxes < MAX_SANDBOXES:
        first = next_test

        def keep_going(offset: int, report: ProcessReport, first: int = first) -> bool:
            index = first + offset
            verdict = _judged(request, spec, inputs[index], index, report, policy.memory_mb << 10)
            if checker is not None and verdict.verdict is Verdict.AC:
                checked = checker.check(index, report.stdout)
                verdict = checked.verdict
                if checked.score is not None:
                    scores[index] = checked.score
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
    exit_code = report.exit_code
    near_memory_limit = report.max_rss_kb >= NEAR_MEMORY_LIMIT * memory_kb
    heap_exhausted = spec.ran_out_of_heap(report.exit_code, stderr)
    if request.mode == "command" and exit_code and not (near_memory_limit or heap_exhausted):
        exit_code = 0  # a test command's exit status is its verdict (WA), not a crash
    limit_mb = request.limits.memory_mb
    over_memory_limit = limit_mb is not None and report.max_rss_kb > limit_mb * 1024
    facts = Facts(exit_code=exit_code, signal=report.signal, cpu_ms=report.cpu_ms,
                  wall_killed=report.wall_killed, output_exceeded=report.output_exceeded,
                  heap_exhausted=heap_exhausted, near_memory_limit=near_memory_limit,
                  over_memory_limit=over_memory_limit, tampered=outcome.tampered,
                  program_error=outcome.error)  # fmt: skip
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
    if request.checker is not None:  # provisional: the checker decides (LiveChecker)
        return calls.Outcome(Comparison(matched=True, mismatch=None))
    if request.mode == "command":
        failed = f"the test command failed: exit code {report.exit_code}"
        return calls.Outcome(
            Comparison(report.exit_code == 0, None, None if report.exit_code == 0 else failed)
        )
    output = report.stdout.decode("utf-8", errors="replace")
    expected = request.tests[index].expected_stdout or ""
    return calls.Outcome(compare(output, expected, request.compare))


def _ended_facts(ended: SandboxEnded) -> Facts:
    return Facts(sandbox_oom=ended.oom_killed, sandbox_ended=True, sandbox_stuck=ended.stuck,
                 tampered=ended.tampered,
                 stopped_by_host=ended.killed and not ended.oom_killed)  # fmt: skip


Judged = tuple[TestVerdict, ProcessReport | None]


def _test_result(index: int, request: JudgeRequest, judged: Judged | None,
                 score: float | None = None) -> TestResult:  # fmt: skip
    test_id = request.tests[index].id
    if judged is None:
        return TestResult(index=index, id=test_id, verdict=Verdict.SKIPPED)
    verdict, report = judged
    fields: dict = {"index": index, "id": test_id, "verdict": verdict.verdict, "score": score,
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
