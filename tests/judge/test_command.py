"""Command tests in real sandboxes (every backend): a test's shell line runs beside the program
(its files written there first, $PROGRAM the command that runs the program) and its exit status
is the verdict; nothing a test writes reaches the next."""

from __future__ import annotations

import pytest

from crucible_ray.errors import InvalidRequest
from crucible_ray.judge.verdicts import Verdict

ADD = """def add(a, b):
    return a + b

if __name__ == "__main__":
    print(add(*map(int, input().split())))
"""
UNIT_TEST = """
import unittest
from main import add

class AddTest(unittest.TestCase):
    def test_small(self):
        self.assertEqual(add(2, 3), 5)
    def test_negative(self):
        self.assertEqual(add(-2, -3), {expected})

unittest.main()
"""


def test_a_test_file_run_beside_the_program_judges_it_by_exit_status(run_judge):
    right, wrong = (UNIT_TEST.format(expected=n) for n in (-5, 0))
    tests = [{"command": "python3 test_add.py", "files": {"test_add.py": right}},
             {"command": "echo 2 3 | $PROGRAM | grep -qx 5"},
             {"command": "python3 test_add.py", "files": {"test_add.py": wrong}}]  # fmt: skip
    result = run_judge(ADD, tests, mode="command", stop_on_first_failure=False)
    assert [t.verdict for t in result.tests] == [Verdict.AC, Verdict.AC, Verdict.WA]
    failed = result.tests[2]
    assert failed.exit_code == 1 and failed.message == "the test command failed: exit code 1"
    assert "AssertionError: -5 != 0" in failed.stderr_preview
    assert result.sandboxes == 1


def test_a_compiled_program_is_built_once_and_run_by_each_command(run_judge):
    code = ('#include <stdio.h>\nint main(void) { long a, b; scanf("%ld %ld", &a, &b);'
            ' printf("%ld\\n", a * b); return 0; }\n')  # fmt: skip
    tests = [{"command": "echo 6 7 | $PROGRAM | grep -qx 42"},
             {"command": "test \"$(echo 2 2 | $PROGRAM)\" = 5"}]  # fmt: skip
    result = run_judge(code, tests, language="c", mode="command", stop_on_first_failure=False)
    assert [t.verdict for t in result.tests] == [Verdict.AC, Verdict.WA]
    assert result.compile is not None and result.compile.status == "ok"


def test_what_a_test_leaves_never_reaches_the_next(run_judge):
    tests = [{"command": "echo left > leftover && touch /dev/shm/x", "files": {"given.txt": "1"}},
             {"command": "test ! -e leftover && test ! -e given.txt && test ! -e /dev/shm/x"},
             {"command": "test -e main.py"}]  # fmt: skip
    result = run_judge(ADD, tests, mode="command", stop_on_first_failure=False)
    assert [t.verdict for t in result.tests] == [Verdict.AC] * 3, result.tests


def test_a_command_that_runs_too_long_is_tle_and_a_signal_is_re(run_judge):
    tests = [{"command": "while :; do :; done", "cpu_s": 1},
             {"command": "kill -SEGV $$"}]  # fmt: skip
    result = run_judge(ADD, tests, mode="command", stop_on_first_failure=False)
    assert [t.verdict for t in result.tests] == [Verdict.TLE, Verdict.RE]
    assert result.tests[1].signal == "SIGSEGV"


def test_a_test_file_may_not_replace_the_program(run_judge):
    with pytest.raises(InvalidRequest, match=r"main\.py is the program's own file"):
        run_judge(ADD, [{"command": "true", "files": {"main.py": "print(5)"}}], mode="command")
