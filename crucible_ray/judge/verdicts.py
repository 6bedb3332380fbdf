"""What a test's run means, and what a submission's tests add up to. Pure functions.

A verdict blames the program only for what the program did. ``IE`` (internal error) is the
platform's fault: never the program's, retriable, and it makes the score ``None`` so that an
RL caller drops the sample instead of training on a fake zero. Nothing a program can do on
its own yields ``IE``: a sandbox it takes down, or a report it tampers with, is ``RE``.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from crucible_ray.judge.compare import Comparison, Mismatch


class Verdict(StrEnum):
    AC = "AC"  # accepted
    WA = "WA"  # wrong answer
    PA = "PA"  # partially accepted (a checker's score between 0 and 1)
    TLE = "TLE"  # time limit exceeded (CPU or wall clock: TestVerdict.limit)
    MLE = "MLE"  # memory limit exceeded
    OLE = "OLE"  # output limit exceeded
    RE = "RE"  # runtime error: non-zero exit, a signal, or a sandbox the program broke
    CE = "CE"  # compilation error
    SKIPPED = "SKIPPED"  # not run (an earlier test failed and the request stops there)
    IE = "IE"  # internal error: the platform's fault, never the program's


Scoring = str  # pass_fail | fraction | weighted | subtasks (JudgeRequest validates it)


@dataclass(frozen=True)
class Facts:
    """What was measured of one test's process (from the driver's report), or how the
    sandbox ended without one."""

    exit_code: int | None = None
    signal: int | None = None
    cpu_ms: float = 0.0
    wall_killed: bool = False
    output_exceeded: bool = False
    heap_exhausted: bool = False  # the runtime stopped at its heap limit (Go, the JVM, V8)
    near_memory_limit: bool = False  # its peak memory was close to the sandbox's limit
    over_memory_limit: bool = False  # its peak memory passed the request's memory_mb
    sandbox_oom: bool = False  # the sandbox's memory cgroup killed it
    sandbox_ended: bool = False  # the sandbox ended during the test, without a report
    sandbox_stuck: bool = False  # the driver did not report in time: the program's doing
    tampered: bool = False  # what came back was not the driver's report
    stopped_by_host: bool = False  # killed from the host (cancelled, or the host failed)
    program_error: str | None = None  # function, assert: what the submission raised, or why
    # it gave no result (it failed to import, ended during a call...)


@dataclass(frozen=True)
class TestVerdict:
    __test__ = False  # not a pytest test class

    verdict: Verdict
    limit: str | None = None  # for TLE: "cpu" or "wall"
    message: str | None = None
    mismatch: Mismatch | None = None  # for WA: where the output first differs


def signal_name(number: int | None) -> str | None:
    if number is None:
        return None
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def verdict_of(facts: Facts, cpu_limit_s: float, comparison: Comparison | None) -> TestVerdict:
    """The verdict of one test. ``comparison`` is of its output with the expected answer
    (None when there is no output to compare: the sandbox ended)."""
    if facts.stopped_by_host:
        return TestVerdict(Verdict.IE, message="the sandbox was stopped from the host")
    if facts.tampered:
        return TestVerdict(Verdict.RE, message="the program interfered with the judge")
    failed = facts.exit_code != 0 or facts.signal is not None
    if (
        facts.sandbox_oom
        or facts.heap_exhausted
        or facts.over_memory_limit
        or (failed and facts.near_memory_limit)
    ):
        return TestVerdict(Verdict.MLE)  # failing near the limit: an allocation that failed
    if facts.sandbox_stuck:
        return TestVerdict(Verdict.TLE, "wall")
    if facts.sandbox_ended:
        return TestVerdict(Verdict.RE, message="the sandbox ended during this test")
    if facts.output_exceeded:
        return TestVerdict(Verdict.OLE)
    over_cpu = facts.cpu_ms > cpu_limit_s * 1000  # (RLIMIT_CPU is whole seconds: it may not fire)
    if facts.wall_killed:
        return TestVerdict(Verdict.TLE, "cpu" if over_cpu else "wall")
    if facts.signal == signals.SIGXCPU or over_cpu:
        return TestVerdict(Verdict.TLE, "cpu")
    if facts.signal is not None:
        return TestVerdict(Verdict.RE, message=f"killed by {signal_name(facts.signal)}")
    if facts.program_error is not None:
        return TestVerdict(Verdict.RE, message=facts.program_error)
    if facts.exit_code != 0:
        return TestVerdict(Verdict.RE, message=f"exit code {facts.exit_code}")
    if comparison is None:
        return TestVerdict(Verdict.WA)
    if not comparison.matched:
        return TestVerdict(Verdict.WA, message=comparison.message, mismatch=comparison.mismatch)
    return TestVerdict(Verdict.AC)


@dataclass(frozen=True)
class Scored:
    verdict: Verdict
    score: float | None
    passed: int
    first_failure: int | None  # index of the first test that is not AC (nor SKIPPED)


def overall(
    verdicts: Sequence[Verdict],
    scoring: Scoring = "pass_fail",
    *,
    weights: Sequence[float] | None = None,
    groups: Sequence[str | None] | None = None,
    points: dict[str, float] | None = None,
    test_scores: Sequence[float | None] | None = None,
) -> Scored:
    """The submission's verdict and score from its tests' verdicts, in test order.

    Verdict: ``IE`` if any test is ``IE``; else the first that is neither ``AC`` nor
    ``SKIPPED``; else ``SKIPPED`` if a test was skipped without any failure (the request's
    ``max_tests``... never by early stop, which needs a failure); else ``AC``. Score: ``None``
    with any ``IE``; ``pass_fail`` 1 or 0; ``fraction`` the share of tests passed;
    ``weighted`` the share of weight passed; ``subtasks`` the sum over groups of the group's
    points times its lowest test score, over the total points. A ``PA`` test counts its own
    score (``test_scores``), an ``AC`` 1, anything else 0.
    """
    passed = sum(v is Verdict.AC for v in verdicts)
    failures = [i for i, v in enumerate(verdicts) if v not in (Verdict.AC, Verdict.SKIPPED)]
    first_failure = failures[0] if failures else None
    if Verdict.IE in verdicts:
        return Scored(Verdict.IE, None, passed, first_failure)
    if first_failure is not None:
        verdict = verdicts[first_failure]
    else:
        verdict = Verdict.SKIPPED if Verdict.SKIPPED in verdicts else Verdict.AC
    scores = [
        _test_score(v, test_scores[i] if test_scores else None) for i, v in enumerate(verdicts)
    ]
    if not verdicts:
        return Scored(verdict, 0.0, 0, None)
    if scoring == "pass_fail":
        score = 1.0 if verdict is Verdict.AC else 0.0
    elif scoring == "fraction":
        score = sum(scores) / len(scores)
    elif scoring == "weighted":
        weights = weights or [1.0] * len(verdicts)
        score = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
    elif scoring == "subtasks":
        score = _subtasks(scores, groups or [None] * len(verdicts), points or {})
    else:
        raise ValueError(f"unknown scoring {scoring!r}")
    return Scored(verdict, round(score, 9), passed, first_failure)


def _test_score(verdict: Verdict, partial: float | None) -> float:
    if verdict is Verdict.AC:
        return 1.0
    if verdict is Verdict.PA and partial is not None:
        return min(max(partial, 0.0), 1.0)
    return 0.0


def _subtasks(scores: Sequence[float], groups: Sequence[str | None],
              points: dict[str, float]) -> float:  # fmt: skip
    lowest: dict[str, float] = {}
    for score, group in zip(scores, groups, strict=True):
        if group is None:
            raise ValueError("subtasks scoring needs a group on every test")
        lowest[group] = min(lowest.get(group, 1.0), score)
    total = sum(points.get(g, 1.0) for g in lowest)
    return sum(points.get(g, 1.0) * s for g, s in lowest.items()) / total if total else 0.0
