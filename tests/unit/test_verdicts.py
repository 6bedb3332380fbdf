"""Verdicts and scores (pure): what a test's facts mean, and what the tests add up to."""

from __future__ import annotations

import signal

import pytest

from crucible_ray.judge.compare import Comparison, Mismatch
from crucible_ray.judge.verdicts import Facts, Verdict, overall, signal_name, verdict_of

SAME = Comparison(matched=True, mismatch=None)
DIFFERENT = Comparison(matched=False, mismatch=Mismatch(1, 1, "5", "4"), message="differs")


@pytest.mark.parametrize(
    ("facts", "comparison", "verdict", "limit"),
    [
        (Facts(exit_code=0), SAME, Verdict.AC, None),
        (Facts(exit_code=0), DIFFERENT, Verdict.WA, None),
        (Facts(exit_code=1), SAME, Verdict.RE, None),  # right output, wrong exit: RE
        (Facts(signal=signal.SIGSEGV), SAME, Verdict.RE, None),
        (Facts(signal=signal.SIGXCPU, cpu_ms=1001), SAME, Verdict.TLE, "cpu"),
        (Facts(exit_code=0, cpu_ms=2500), SAME, Verdict.TLE, "cpu"),  # over a fractional limit
        (Facts(signal=signal.SIGKILL, wall_killed=True), SAME, Verdict.TLE, "wall"),
        # stopped by the wall clock after more CPU than its limit (a fractional one): cpu
        (Facts(signal=signal.SIGKILL, wall_killed=True, cpu_ms=2100), SAME, Verdict.TLE, "cpu"),
        (Facts(exit_code=0, program_error="the function raised E: x"), None, Verdict.RE, None),
        (Facts(signal=signal.SIGXCPU, program_error="ended"), None, Verdict.TLE, "cpu"),
        (Facts(signal=signal.SIGKILL, output_exceeded=True), SAME, Verdict.OLE, None),
        (Facts(exit_code=2, heap_exhausted=True), SAME, Verdict.MLE, None),
        (Facts(exit_code=1, near_memory_limit=True), SAME, Verdict.MLE, None),
        (Facts(exit_code=0, near_memory_limit=True), SAME, Verdict.AC, None),  # it fit
        # past the request's memory_mb: MLE, even with the right answer and exit code 0
        (Facts(exit_code=0, over_memory_limit=True), SAME, Verdict.MLE, None),
        (Facts(sandbox_ended=True, sandbox_oom=True), None, Verdict.MLE, None),
        (Facts(sandbox_ended=True), None, Verdict.RE, None),
        (Facts(sandbox_ended=True, sandbox_stuck=True), None, Verdict.TLE, "wall"),
        (Facts(sandbox_ended=True, tampered=True), None, Verdict.RE, None),
        (Facts(sandbox_ended=True, stopped_by_host=True), None, Verdict.IE, None),
    ],
)
def test_verdict_of_one_test(facts, comparison, verdict, limit):
    judged = verdict_of(facts, 2.0, comparison)
    assert (judged.verdict, judged.limit) == (verdict, limit)


def test_a_wrong_answer_carries_where_it_differs():
    judged = verdict_of(Facts(exit_code=0), 2.0, DIFFERENT)
    assert judged.mismatch == Mismatch(1, 1, "5", "4") and judged.message == "differs"


def test_output_over_the_limit_wins_over_the_wall_clock_it_was_killed_by():
    facts = Facts(signal=signal.SIGKILL, output_exceeded=True, wall_killed=True)
    assert verdict_of(facts, 2.0, SAME).verdict is Verdict.OLE


def test_tampering_is_never_an_internal_error():
    facts = Facts(sandbox_ended=True, tampered=True)
    assert verdict_of(facts, 2.0, None).verdict is Verdict.RE


A, W, S, IE, T = Verdict.AC, Verdict.WA, Verdict.SKIPPED, Verdict.IE, Verdict.TLE


@pytest.mark.parametrize(
    ("verdicts", "scoring", "verdict", "score", "first"),
    [
        ([A, A, A], "pass_fail", A, 1.0, None),
        ([A, W, S], "pass_fail", W, 0.0, 1),
        ([A, W, A, T], "fraction", W, 0.5, 1),
        ([A, A, S], "fraction", S, 2 / 3, None),  # skipped without a failure (max_tests)
        ([A, IE, A], "fraction", IE, None, 1),  # the platform failed: no score at all
        ([], "pass_fail", A, 0.0, None),
    ],
)
def test_overall(verdicts, scoring, verdict, score, first):
    scored = overall(verdicts, scoring)
    assert (scored.verdict, scored.first_failure) == (verdict, first)
    assert scored.score == (None if score is None else pytest.approx(score))


def test_weighted_scores_count_each_tests_weight():
    assert overall([A, W, A], "weighted", weights=[1, 2, 3]).score == pytest.approx(4 / 6)


def test_subtasks_score_a_group_by_its_weakest_test():
    scored = overall([A, A, A, W], "subtasks", groups=["g1", "g1", "g2", "g2"],
                     points={"g1": 30, "g2": 70})  # fmt: skip
    assert scored.score == pytest.approx(0.3)


def test_subtasks_need_a_group_on_every_test():
    with pytest.raises(ValueError, match="group"):
        overall([A, A], "subtasks", groups=["g1", None])


def test_partial_scores_count_in_fractions():
    scored = overall([A, Verdict.PA], "fraction", test_scores=[None, 0.5])
    assert (scored.verdict, scored.score) == (Verdict.PA, 0.75)


def test_signal_names():
    assert (signal_name(11), signal_name(None), signal_name(200)) == ("SIGSEGV", None, "signal 200")
