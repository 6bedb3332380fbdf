"""Dataset adapters judged for real (every backend): reference solutions are AC, broken ones
are not. HumanEval's problems are the real ones (a sample here: all 164 are in
benchmarks/humaneval_bench.py); the others are rows made here in each dataset's shape."""

from __future__ import annotations

import json

import pytest

from crucible_ray.judge import datasets, judge
from tests.unit.test_datasets import MBPP, humaneval_rows

# Problems whose tests call the prompt's own helpers (32 poly, 38 encode_cyclic, 50
# encode_shift), use floats (2, 4), tuples (8), randomised checks (53) and exceptions-free
# string work (0, 161).
SAMPLE = ("HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/8", "HumanEval/32",
          "HumanEval/38", "HumanEval/50", "HumanEval/53", "HumanEval/161")  # fmt: skip
ROWS = {row["task_id"]: row for row in humaneval_rows()}
TWO_SUM = """
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, n in enumerate(nums):
            if target - n in seen:
                return [seen[target - n], i]
            seen[n] = i
"""


@pytest.mark.parametrize("task_id", SAMPLE)
def test_humaneval_canonical_solutions_pass_and_broken_ones_fail(judge_runner, task_id):
    row = ROWS[task_id]
    good = judge(judge_runner, datasets.humaneval(row))
    assert good.verdict == "AC", good.tests[0]
    broken = judge(judge_runner, datasets.humaneval(row, "    return None\n"))
    assert broken.verdict in ("WA", "RE"), broken.tests[0]


def test_mbpp(judge_runner):
    right = "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]"
    good = judge(judge_runner, datasets.mbpp(MBPP, right, stop_on_first_failure=False))
    assert [t.verdict for t in good.tests] == ["AC", "AC"], good.tests
    assert judge(judge_runner, datasets.mbpp(MBPP)).verdict == "WA"  # the row's code: wrong


def test_apps_and_livecodebench_call_based_problems(judge_runner):
    spec = {"fn_name": "add", "inputs": [[1, 2], [[1], [2]]], "outputs": [[3], [[1, 2]]]}
    row = {"problem_id": 8, "input_output": json.dumps(spec)}
    code = "class Solution:\n    def add(self, a, b):\n        return a + b\n"
    assert judge(judge_runner, datasets.apps(row, code)).verdict == "AC"
    assert judge(judge_runner, datasets.apps(row, code.replace("a + b", "a"))).verdict == "WA"
    lcb = {"question_id": "q1", "metadata": json.dumps({"func_name": "twoSum"}),
           "public_test_cases": json.dumps([{"input": "[2,7,11,15]\n9", "output": "[0, 1]",
                                             "testtype": "functional"}])}  # fmt: skip
    solution = TWO_SUM
    assert judge(judge_runner, datasets.livecodebench(lcb, solution)).verdict == "AC"
    wrong = solution.replace("[seen[target - n], i]", "[i, seen[target - n]]")
    assert judge(judge_runner, datasets.livecodebench(lcb, wrong)).verdict == "WA"


def test_codecontests_in_c(judge_runner):
    row = {"name": "inc", "public_tests": {"input": ["1\n"], "output": ["2\n"]},
           "generated_tests": {"input": ["41\n"], "output": ["42\n"]}}  # fmt: skip
    code = '#include <stdio.h>\nint main(void){int x; scanf("%d",&x); printf("%d\\n", x + 1);}\n'
    assert judge(judge_runner, datasets.codecontests(row, code, language="c")).verdict == "AC"
    off = code.replace("x + 1", "x + 2")
    assert judge(judge_runner, datasets.codecontests(row, off, language="c")).verdict == "WA"
