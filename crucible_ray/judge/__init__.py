"""Judging: test cases, comparison, verdicts.

One submission and all its tests, in one fresh sandbox: compiled once, a fresh process per
test, each output compared on the host (answers never enter the sandbox)::

    from crucible_ray import SandboxRunner
    from crucible_ray.judge import JudgeRequest, judge

    with SandboxRunner() as runner:
        result = judge(runner, JudgeRequest(language="python", code=source,
                                            tests=[{"stdin": "1 2", "expected_stdout": "3"}]))
        result.verdict, result.score, [t.verdict for t in result.tests]
"""

from crucible_ray.judge.compare import COMPARE_VERSION, CompareSpec
from crucible_ray.judge.judging import judge
from crucible_ray.judge.models import JudgeLimits, JudgeRequest, JudgeResult, JudgeTest, TestResult
from crucible_ray.judge.verdicts import Verdict

__all__ = [
    "COMPARE_VERSION",
    "CompareSpec",
    "JudgeLimits",
    "JudgeRequest",
    "JudgeResult",
    "JudgeTest",
    "TestResult",
    "Verdict",
    "judge",
]
