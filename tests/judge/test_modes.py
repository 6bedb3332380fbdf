"""Function and assert tests (Python), on every backend: the submission's functions are called
in its own process, only plain data comes back, and an assert test's code runs in a checker
the submission cannot forge (HumanEval, MBPP and LeetCode shapes)."""

from __future__ import annotations

import pytest


def function(run_judge, code, tests, entry_point="f", **fields):
    return run_judge(code, tests, mode="function", entry_point=entry_point, **fields)


def checked(run_judge, code, test_codes, entry_point=None, **fields):
    tests = [{"code": c} for c in test_codes]
    return run_judge(code, tests, mode="assert", entry_point=entry_point, **fields)


# --- function mode -------------------------------------------------------------------------

ADD = "def f(a, b=0, *, scale=1):\n    print('noise on stdout')\n    return (a + b) * scale\n"


def test_function_calls_with_positional_and_keyword_arguments(run_judge):
    result = function(run_judge, ADD, [
        {"args": [1, 2], "expected": 3},
        {"args": [1], "kwargs": {"b": 4, "scale": 2}, "expected": 10},
        {"args": [[1], [2]], "expected": [1, 2]},
    ])  # fmt: skip
    assert [t.verdict for t in result.tests] == ["AC", "AC", "AC"], result.tests
    assert result.verdict == "AC" and result.score == 1.0
    assert "noise on stdout" in result.tests[0].stdout_preview  # kept, never compared


def test_function_return_values_compare_as_json(run_judge):
    code = "def f(x):\n    return {'pair': (x, x * 0.5), 'set': {3, 1, 2}}\n"
    good = function(run_judge, code, [{"args": [2], "expected": {"pair": [2, 1.0],
                                                                 "set": [1, 2, 3]}}])  # fmt: skip
    assert good.verdict == "AC", good.tests[0]
    bad = function(run_judge, code, [{"args": [2], "expected": {"pair": [2, 1.5],
                                                                "set": [1, 2, 3]}}])  # fmt: skip
    assert bad.verdict == "WA" and bad.tests[0].mismatch is not None
    assert "1.5" in bad.tests[0].mismatch.expected


def test_a_leetcode_method_is_called_on_a_new_instance(run_judge):
    code = (
        "class Solution:\n"
        "    def twoSum(self, nums, target):\n"
        "        seen = {}\n"
        "        for i, n in enumerate(nums):\n"
        "            if target - n in seen:\n"
        "                return [seen[target - n], i]\n"
        "            seen[n] = i\n"
    )
    result = function(run_judge, code, [{"args": [[2, 7, 11, 15], 9], "expected": [0, 1]},
                                        {"args": [[3, 2, 4], 6], "expected": [1, 2]}],
                      entry_point="Solution.twoSum")  # fmt: skip
    assert result.verdict == "AC", result.tests


def test_what_the_function_raises_is_a_runtime_error(run_judge):
    code = "def f(x):\n    raise ValueError(f'bad {x}')\n"
    result = function(run_judge, code, [{"args": [7], "expected": 1}])
    test = result.tests[0]
    assert test.verdict == "RE" and "ValueError: bad 7" in (test.message or "")
    assert "ValueError" in test.stderr_preview  # the traceback, as Python prints it


def test_a_submission_that_does_not_import_is_a_runtime_error(run_judge):
    result = function(run_judge, "def f(:\n", [{"args": [], "expected": 1}])
    assert result.tests[0].verdict == "RE"
    assert "failed to import: SyntaxError" in (result.tests[0].message or "")


def test_an_endless_function_is_a_time_limit(run_judge):
    result = function(run_judge, "def f():\n    while True:\n        pass\n",
                      [{"args": [], "expected": 1}], limits={"cpu_s": 0.5})  # fmt: skip
    assert result.tests[0].verdict == "TLE" and result.tests[0].limit == "cpu"


@pytest.mark.parametrize(
    "code",
    [
        "import os\nos._exit(0)\ndef f():\n    return 1\n",  # exits before any call
        "import sys\ndef f():\n    sys.exit(0)\n",  # exits during the call
        "def f():\n    import os; os._exit(0)\n",
        "print('PASSED')\nprint('1')\ndef f():\n    return 2\n",
    ],
    ids=["exit-at-import", "sys-exit-in-call", "os-exit-in-call", "print-passed"],
)
def test_exiting_early_or_printing_never_passes(run_judge, code):
    result = function(run_judge, code, [{"args": [], "expected": 1}])
    assert result.tests[0].verdict in ("RE", "WA"), result.tests[0]
    assert result.score == 0.0


ALWAYS_EQUAL = """
class Equal:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__

class Five(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def equal():
    return Equal()

def five():
    return Five(5)
"""


def test_an_always_equal_object_is_not_an_answer(run_judge):
    objects = function(run_judge, ALWAYS_EQUAL, [{"args": [], "expected": 3}], entry_point="equal")
    assert objects.tests[0].verdict == "WA" and "Equal" in (objects.tests[0].message or "")
    ints = function(run_judge, ALWAYS_EQUAL, [{"args": [], "expected": 3}], entry_point="five")
    assert ints.tests[0].verdict == "WA"  # compared as the plain 5 it is


# --- assert mode ---------------------------------------------------------------------------

HUMANEVAL = """
from typing import List

def poly(xs: list, x: float):
    return sum(coeff * x ** i for i, coeff in enumerate(xs))

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
"""
HUMANEVAL_TEST = """
METADATA = {"author": "jt"}

def check(candidate):
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False
    assert abs(poly([1, 2], 3.0) - 7.0) < 1e-9

check(candidate)
"""


def test_a_humaneval_check_passes_and_a_wrong_solution_fails_at_its_line(run_judge):
    good = checked(run_judge, HUMANEVAL, [HUMANEVAL_TEST], entry_point="has_close_elements")
    assert good.verdict == "AC", good.tests[0]
    wrong = HUMANEVAL.replace("abs(a - b) < threshold", "abs(a - b) <= 0")
    bad = checked(run_judge, wrong, [HUMANEVAL_TEST], entry_point="has_close_elements")
    assert bad.verdict == "WA"
    assert "line 5 of the test" in bad.tests[0].message and "0.3) == True" in bad.tests[0].message


def test_mbpp_asserts_call_the_function_by_name(run_judge):
    code = (
        "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n"
    )
    tests = ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
             'assert remove_Occ("PHP","P") == "H"']  # fmt: skip
    result = checked(run_judge, code, tests, stop_on_first_failure=False)
    assert [t.verdict for t in result.tests] == ["AC", "AC", "AC"], result.tests


def test_exceptions_the_test_expects_cross_back_as_themselves(run_judge):
    code = (
        "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n"
    )
    test = "try:\n    root(-1)\nexcept ValueError as exc:\n    assert str(exc) == 'negative'\n" \
           "else:\n    raise AssertionError('no error')\nassert root(4) == 2.0\n"  # fmt: skip
    result = checked(run_judge, code, [test, "root(-2)"], stop_on_first_failure=False)
    assert result.tests[0].verdict == "AC", result.tests[0]
    assert result.tests[1].verdict == "RE"
    assert "the submission raised ValueError: negative" in result.tests[1].message


def test_a_tuple_stays_a_tuple(run_judge):
    code = "def sum_product(xs):\n    return (sum(xs), 6)\n"
    result = checked(run_judge, code, ["assert candidate([1, 2, 3]) == (6, 6)",
                                       "assert candidate([1, 2, 3]) != [6, 6]"],
                     entry_point="sum_product", stop_on_first_failure=False)  # fmt: skip
    assert [t.verdict for t in result.tests] == ["AC", "AC"], result.tests


FORGERS = {
    "exit-at-import": "import os\nos._exit(0)\n",
    "exit-in-call": "import sys\ndef f(x):\n    sys.exit(0)\n",
    "always-equal": "class E:\n    def __eq__(self, o):\n        return True\n"
    "def f(x):\n    return E()\n",
    "kill-everything": "import os, signal\ndef f(x):\n    os.kill(-1, signal.SIGKILL)\n",
    # writes an outcome that claims a pass into every pipe it can open: no token, no pass
    "forge-outcome": """
import os
claim = b'{"passed":true,"token":"0"}'
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        for fd in range(3, 12):
            try:
                w = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
                os.write(w, claim)
            except OSError:
                pass
def f(x):
    return 0
""",
    "read-the-checker": """
import os
def f(x):
    for pid in os.listdir("/proc"):
        for part in ("environ", "cmdline", "mem"):
            try:
                print(open(f"/proc/{pid}/{part}", "rb").read(200))
            except OSError:
                pass
    return 0
""",
}


@pytest.mark.parametrize("attack", sorted(FORGERS))
def test_an_assert_test_cannot_be_passed_without_passing_it(run_judge, attack):
    result = checked(run_judge, FORGERS[attack], ["assert f(1) == 2"])
    test = result.tests[0]
    assert test.verdict in ("RE", "WA"), (attack, test)
    assert result.score == 0.0


def test_science_values_cross_as_plain_data(run_judge):
    code = "import numpy as np\ndef f(n):\n    return np.arange(n) * 2, np.int64(n)\n"
    result = checked(run_judge, code, ["assert candidate(3) == ([0, 2, 4], 3)"],
                     image="python-science", entry_point="f")  # fmt: skip
    assert result.verdict == "AC", result.tests[0]


def test_function_and_assert_modes_are_python_only(run_judge):
    from crucible_ray.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        function(run_judge, "int f() { return 1; }", [{"args": [], "expected": 1}], language="c")
    assert refused.value.field == "mode"
