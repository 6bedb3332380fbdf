"""Dataset adapters: the test encodings of public code benchmarks as judge requests. Pure.

Each takes one row as the dataset publishes it (a dict) and the code to judge (by default the
row's own reference solution, where it has one), and returns a JudgeRequest:

- HumanEval (``task_id, prompt, canonical_solution, test, entry_point``): the prompt and the
  completion are the submission; ``test`` + ``check(candidate)`` one assert test.
- MBPP (``code, test_list, test_setup_code, test_imports``): one assert test per assert, each
  after the setup code and the imports (functions called by name).
- APPS (``input_output``: JSON ``{"inputs", "outputs", "fn_name"?}``): stdio tests, or function
  tests when there is an ``fn_name`` (each input a list of arguments; APPS wraps a single
  expected value in a list). Compared as APPS does: tokens, numbers with a tolerance.
- CodeContests (``public_tests``, ``private_tests``, ``generated_tests``: each
  ``{"input": [...], "output": [...]}``): stdio tests, public first.
- LiveCodeBench (``public_test_cases``, ``private_test_cases``: JSON lists of ``{"input",
  "output", "testtype"}``; ``metadata``: JSON with ``func_name`` for functional problems): stdio
  tests, or function tests calling ``Solution.<func_name>`` (each input line one JSON argument).

Each test's ``id`` names the row (and the test), so that results can be joined back. Adapters
never change what a test expects.
"""

from __future__ import annotations

import json
from typing import Any

from crucible_ray.judge.compare import CompareSpec
from crucible_ray.judge.models import JudgeRequest

APPS_COMPARE = CompareSpec(mode="numeric", abs_tol=1e-6, rel_tol=0.0)


def humaneval(row: dict[str, Any], completion: str | None = None, **options: Any) -> JudgeRequest:
    body = row["canonical_solution"] if completion is None else completion
    return JudgeRequest(
        code=row["prompt"] + body, mode="assert", entry_point=row["entry_point"],
        tests=[{"id": row["task_id"], "code": row["test"] + "\n\ncheck(candidate)\n"}],
        **options,
    )  # fmt: skip


def mbpp(row: dict[str, Any], code: str | None = None, **options: Any) -> JudgeRequest:
    setup = "\n".join([*row.get("test_imports", []), row.get("test_setup_code", "") or ""])
    tests = [{"id": f"{row['task_id']}/{i}", "code": f"{setup}\n{assertion}\n"}
             for i, assertion in enumerate(row["test_list"])]  # fmt: skip
    return JudgeRequest(code=row["code"] if code is None else code, mode="assert", tests=tests,
                        **options)  # fmt: skip


def apps(row: dict[str, Any], code: str, **options: Any) -> JudgeRequest:
    spec = _json(row["input_output"])
    inputs, outputs = spec["inputs"], spec["outputs"]
    name = row.get("problem_id")
    if spec.get("fn_name"):
        pairs = enumerate(zip(inputs, outputs, strict=True))
        tests = [{"id": f"{name}/{i}", "args": list(args), "expected": _unwrapped(expected)}
                 for i, (args, expected) in pairs]  # fmt: skip
        entry = _apps_entry(code, spec["fn_name"])
        return JudgeRequest(code=code, mode="function", entry_point=entry, tests=tests, **options)
    tests = [{"id": f"{name}/{i}", "stdin": _text(stdin), "expected_stdout": _text(expected)}
             for i, (stdin, expected) in enumerate(zip(inputs, outputs, strict=True))]  # fmt: skip
    return JudgeRequest(code=code, tests=tests, compare=options.pop("compare", APPS_COMPARE),
                        **options)  # fmt: skip


def codecontests(row: dict[str, Any], code: str, language: str = "python",
                 **options: Any) -> JudgeRequest:  # fmt: skip
    tests = []
    for kind in ("public_tests", "private_tests", "generated_tests"):
        cases = row.get(kind) or {"input": [], "output": []}
        for i, (stdin, expected) in enumerate(zip(cases["input"], cases["output"], strict=True)):
            tests.append({"id": f"{row.get('name')}/{kind.removesuffix('_tests')}/{i}",
                          "stdin": stdin, "expected_stdout": expected})  # fmt: skip
    return JudgeRequest(code=code, language=language, tests=tests, **options)


def livecodebench(row: dict[str, Any], code: str, **options: Any) -> JudgeRequest:
    cases = [*_json(row["public_test_cases"]), *_json(row.get("private_test_cases") or "[]")]
    metadata = _json(row.get("metadata") or "{}")
    name = row.get("question_id")
    if cases and all(c.get("testtype") == "functional" for c in cases):
        tests = [{"id": f"{name}/{i}", "expected": json.loads(c["output"]),
                  "args": [json.loads(line) for line in c["input"].splitlines() if line.strip()]}
                 for i, c in enumerate(cases)]  # fmt: skip
        entry = f"Solution.{metadata['func_name']}"
        return JudgeRequest(code=code, mode="function", entry_point=entry, tests=tests, **options)
    tests = [{"id": f"{name}/{i}", "stdin": c["input"], "expected_stdout": c["output"]}
             for i, c in enumerate(cases)]  # fmt: skip
    return JudgeRequest(code=code, tests=tests, **options)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _text(value: Any) -> str:
    if isinstance(value, list):  # some APPS rows give a test's lines as a list
        return "\n".join(str(v) for v in value)
    return str(value)


def _unwrapped(expected: Any) -> Any:
    return expected[0] if isinstance(expected, list) and len(expected) == 1 else expected


def _apps_entry(code: str, fn_name: str) -> str:
    """APPS's call-based problems are LeetCode's (a method of ``Solution``) or plain functions."""
    return f"Solution.{fn_name}" if "class Solution" in code else fn_name
