"""Judging tests run real sandboxes on every backend of the conformance suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crucible_ray import SandboxPolicy, SandboxRunner
from crucible_ray.judge.judging import judge
from crucible_ray.judge.models import JudgeRequest, JudgeResult
from tests.sandbox.conftest import backend_name, checked_backend  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def judge_runner(checked_backend) -> Iterator[SandboxRunner]:  # noqa: F811
    with SandboxRunner(SandboxPolicy(backend=checked_backend)) as runner:
        yield runner


@pytest.fixture
def run_judge(judge_runner) -> Callable[..., JudgeResult]:
    """Judge a request given as JudgeRequest fields; ``tests`` as (stdin, expected) pairs."""

    def run(code: str, tests: list[tuple[str, str]] | list[dict[str, Any]],
            language: str = "python", **fields: Any) -> JudgeResult:  # fmt: skip
        cases = [t if isinstance(t, dict) else {"stdin": t[0], "expected_stdout": t[1]}
                 for t in tests]  # fmt: skip
        request = JudgeRequest(language=language, code=code, tests=cases, **fields)
        return judge(judge_runner, request)

    return run
