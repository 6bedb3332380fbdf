"""Custom checkers in real sandboxes (every backend): the author's program judges each output
in a sandbox of its own, in step with the submission's tests."""

from __future__ import annotations

from crucible_ray.judge.verdicts import Verdict
from tests.judge.test_integrity import SEARCH

# "Print two positive integers that sum to N": many answers are right.
SPLIT = "n = int(input())\nprint(1, n - 1)\n"
SPLIT_WRONG = "n = int(input())\nprint(2, n)\n"
CHECKER = """
import json, sys
case = json.load(sys.stdin)
n = int(case["input"])
try:
    a, b = map(int, case["output"].split())
except ValueError:
    print("WA not two integers"); sys.exit()
print("AC" if a > 0 and b > 0 and a + b == n else f"WA {a} + {b} is not {n}")
"""
TESTS = [{"stdin": str(n), "expected_stdout": f"{n - 1} 1"} for n in (3, 10, 100)]


def test_a_checker_accepts_any_right_answer_that_comparison_would_reject(run_judge):
    compared = run_judge(SPLIT, TESTS)  # the expected answer is one of many
    assert compared.verdict == Verdict.WA
    result = run_judge(SPLIT, TESTS, checker={"code": CHECKER})
    assert (result.verdict, result.score, result.passed) == (Verdict.AC, 1.0, 3)
    assert result.sandboxes == 2  # the submission's and the checker's


def test_a_rejected_output_is_wa_with_the_checkers_message_and_stops_the_rest(run_judge):
    result = run_judge(SPLIT_WRONG, TESTS, checker={"code": CHECKER})
    assert [t.verdict for t in result.tests] == [Verdict.WA, Verdict.SKIPPED, Verdict.SKIPPED]
    assert result.tests[0].message == "2 + 3 is not 3"
    assert result.tests[0].stdout_preview == "2 3\n"  # what the program printed


def test_a_checkers_score_makes_a_partial_verdict(run_judge):
    halves = ("import json, sys\ncase = json.load(sys.stdin)\n"
              "right = case['output'].strip() == case['answer']\n"
              "print('AC' if right else 'PA 0.5 half')\n")  # fmt: skip
    tests = [{"stdin": "", "expected_stdout": "x"}, {"stdin": "", "expected_stdout": "y"}]
    result = run_judge("print('x')", tests, checker={"code": halves},
                       stop_on_first_failure=False, scoring="fraction")  # fmt: skip
    assert [(t.verdict, t.score) for t in result.tests] == [(Verdict.AC, None),
                                                            (Verdict.PA, 0.5)]  # fmt: skip
    assert result.tests[1].message == "half"
    assert (result.verdict, result.score) == (Verdict.PA, 0.75)


def test_a_program_that_fails_is_never_checked(run_judge):
    result = run_judge("raise SystemExit(3)", TESTS, checker={"code": CHECKER})
    assert result.tests[0].verdict == Verdict.RE and result.sandboxes == 1  # no checker booted


def test_a_failing_checker_is_an_internal_error_with_no_score(run_judge):
    broken = "import json, sys\njson.load(sys.stdin)['missing']\n"
    result = run_judge(SPLIT, TESTS, checker={"code": broken})
    assert result.tests[0].verdict == Verdict.IE and result.score is None
    assert "the checker failed: exit code 1" in (result.tests[0].message or "")
    does_not_compile = run_judge(SPLIT, TESTS, checker={"code": "int main( {", "language": "c"})
    assert does_not_compile.verdict == Verdict.IE
    assert "did not compile" in (does_not_compile.tests[0].message or "")


def test_a_compiled_checker_judges_a_python_program(run_judge):
    c_checker = r"""
#include <stdio.h>
#include <string.h>
int main(void) {
    char buf[4096]; size_t n = fread(buf, 1, sizeof buf - 1, stdin); buf[n] = 0;
    /* accepted when the output field starts with "1 " (the program's first number) */
    char *out = strstr(buf, "\"output\": \"");
    puts(out && strncmp(out + 11, "1 ", 2) == 0 ? "AC" : "WA");
    return 0;
}
"""
    right = run_judge(SPLIT, TESTS, checker={"code": c_checker, "language": "c"})
    wrong = run_judge(SPLIT_WRONG, TESTS, checker={"code": c_checker, "language": "c"})
    assert (right.verdict, wrong.verdict) == (Verdict.AC, Verdict.WA)


def test_the_answer_stays_out_of_the_submissions_sandbox_with_a_checker(run_judge):
    looks = ("import json, sys\ncase = json.load(sys.stdin)\n"
             "print('AC' if case['output'] == '[] True\\n' else 'WA')\n")  # fmt: skip
    result = run_judge(SEARCH, [("", "answer-7f3a9c\n")], checker={"code": looks},
                       limits={"cpu_s": 10})  # fmt: skip
    assert result.tests[0].stdout_preview == "[] True\n" and result.verdict == Verdict.AC
