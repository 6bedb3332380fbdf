"""stdio judging in real sandboxes (every backend): one fresh sandbox per submission, a fresh
process per test, verdicts from what each test's process did and what it printed."""

from __future__ import annotations

import pytest

from crucible_ray.judge.verdicts import Verdict

SUM = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
TESTS = [("1 2 3", "6\n"), ("4 5", "9\n"), ("10", "10\n")]


def test_every_test_passes_in_one_sandbox(run_judge):
    result = run_judge(SUM, TESTS)
    assert result.status == "succeeded"
    assert (result.verdict, result.score, result.passed, result.total) == ("AC", 1.0, 3, 3)
    assert result.sandboxes == 1
    assert [t.verdict for t in result.tests] == ["AC"] * 3
    for test in result.tests:
        assert test.exit_code == 0 and test.cpu_ms > 0 and test.wall_ms > 0
        assert test.memory_kb and test.memory_kb > 1000  # a Python process's peak RSS
    assert [t.stdout_preview for t in result.tests] == ["6\n", "9\n", "10\n"]
    assert result.backend in ("docker", "runsc") and result.runtime == "runsc"


def test_a_wrong_answer_stops_the_rest_by_default(run_judge):
    result = run_judge(SUM, [("1 2", "3\n"), ("2 2", "5\n"), ("3 3", "6\n")])
    assert [t.verdict for t in result.tests] == ["AC", "WA", "SKIPPED"]
    assert (result.verdict, result.score, result.first_failure) == ("WA", 0.0, 1)
    mismatch = result.tests[1].mismatch
    assert mismatch is not None and (mismatch.line, mismatch.expected, mismatch.got) == (
        1,
        "5",
        "4",
    )


def test_without_early_stop_every_test_runs_and_the_score_is_a_fraction(run_judge):
    result = run_judge(SUM, [("1 2", "3\n"), ("2 2", "5\n"), ("3 3", "6\n"), ("0", "1\n")],
                       stop_on_first_failure=False, scoring="fraction")  # fmt: skip
    assert [t.verdict for t in result.tests] == ["AC", "WA", "AC", "WA"]
    assert (result.verdict, result.score, result.passed) == ("WA", 0.5, 2)


BY_STDIN = """
import os, sys, time
what = sys.stdin.read().strip()
if what == "spin":
    while True:
        pass
elif what == "sleep":
    time.sleep(60)
elif what == "flood":
    while True:
        sys.stdout.write("x" * 65536)
elif what == "segv":
    os.kill(os.getpid(), 11)
elif what == "exit3":
    sys.exit(3)
elif what == "memory":
    hog = []
    while True:
        hog.append(bytearray(8 << 20))
print("ok")
"""


@pytest.mark.parametrize(
    ("stdin", "verdict", "limit", "message"),
    [
        ("spin", "TLE", "cpu", None),
        ("sleep", "TLE", "wall", None),
        ("flood", "OLE", None, None),
        ("segv", "RE", None, "killed by SIGSEGV"),
        ("exit3", "RE", None, "exit code 3"),
        ("ok", "AC", None, None),
    ],
)
def test_what_the_process_did_decides_the_verdict(run_judge, stdin, verdict, limit, message):
    result = run_judge(BY_STDIN, [(stdin, "ok\n")], limits={"cpu_s": 1, "wall_s": 3,
                                                             "output_bytes": 1 << 16})  # fmt: skip
    test = result.tests[0]
    assert (test.verdict, test.limit, test.message) == (verdict, limit, message)
    assert result.verdict == verdict
    if verdict == "TLE" and limit == "cpu":
        assert test.cpu_ms >= 1000
    if verdict == "OLE":
        assert test.stdout_bytes > 1 << 16 and len(test.stdout_preview) <= 1024


def test_running_out_of_memory_is_mle_and_the_next_test_gets_a_fresh_sandbox(run_judge):
    result = run_judge(BY_STDIN, [("memory", "ok\n"), ("ok", "ok\n")],
                       stop_on_first_failure=False)  # fmt: skip
    assert [t.verdict for t in result.tests] == [Verdict.MLE, Verdict.AC]
    assert result.sandboxes == 2
    assert (result.verdict, result.score) == ("MLE", 0.0)


def test_a_request_memory_limit_below_the_sandboxs_makes_a_bigger_peak_mle(run_judge):
    grow = "import sys\nn = int(sys.stdin.read())\nblock = bytearray(n << 20)\nprint('ok')\n"
    tests = [("1", "ok\n"), ("48", "ok\n"), ("1", "ok\n")]
    limited = run_judge(grow, tests, stop_on_first_failure=False, limits={"memory_mb": 40})
    assert [t.verdict for t in limited.tests] == [Verdict.AC, Verdict.MLE, Verdict.AC]
    assert limited.tests[1].memory_kb > 40 * 1024 > limited.tests[0].memory_kb
    assert limited.sandboxes == 1  # measured, not killed: the sandbox's own limit was not hit
    unlimited = run_judge(grow, tests)  # the sandbox's limit (100 MB) alone: it fits
    assert unlimited.verdict == Verdict.AC


def test_a_compiled_program_is_compiled_once_for_all_its_tests(run_judge):
    code = ('#include <stdio.h>\nint main(void) { long a, b; if (scanf("%ld %ld", &a, &b) != 2)'
            ' return 1; printf("%ld\\n", a + b); return 0; }')  # fmt: skip
    result = run_judge(code, [("1 2", "3\n"), ("20 22", "42\n"), ("-5 5", "0\n")], language="c")
    assert result.compile is not None and result.compile.status == "ok"
    assert (result.verdict, result.passed, result.sandboxes) == ("AC", 3, 1)


def test_a_compile_error_is_ce_with_the_compilers_output(run_judge):
    result = run_judge("int main(void) { return missingThing(); }", TESTS, language="c")
    assert result.verdict == "CE" and result.score == 0.0
    assert "missingThing" in result.compile.output
    assert [t.verdict for t in result.tests] == ["SKIPPED"] * 3
