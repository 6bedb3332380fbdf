"""The judge's request and result: one source of truth for their schema (API, client, store).

A judge request is one submission and all its tests, judged in one fresh sandbox: compiled
once, then one fresh process per test. Expected answers stay on the host.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crucible_ray.judge.compare import CompareSpec
from crucible_ray.judge.verdicts import Verdict
from crucible_ray.models import CompileResult, EvalStatus, SecuritySummary, utcnow

JudgeMode = Literal["stdio", "function", "assert", "command"]
ScoringMode = Literal["pass_fail", "fraction", "weighted", "subtasks"]
# Upper bounds of the schema itself; the policy's own (lower) limits are applied on top.
MAX_TESTS = 1000
MAX_TEST_CPU_S = 60.0


_ENTRY_POINT = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
_MODE_FIELDS = {  # what a test of each mode may have (beyond id, weight, group, cpu_s)
    "stdio": {"stdin", "expected_stdout"},
    "function": {"args", "kwargs", "expected"},  # expected null: the function returns None
    "assert": {"code", "stdin"},
    "command": {"command", "files", "stdin"},
}
_REQUIRED = {"stdio": "expected_stdout", "assert": "code", "command": "command"}
_UNSET: dict[str, Any] = {"stdin": "", "expected_stdout": None, "args": [], "kwargs": {},
                          "expected": None, "code": None, "command": None,
                          "files": {}}  # fmt: skip
# A command test's file names: plain names in the program's directory.
_FILE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
MAX_TEST_FILES = 16


class JudgeTest(BaseModel):
    """One test case. What it expects (``expected_stdout``, ``expected``) is compared on the
    host and never sent to the sandbox; an assert test's ``code`` runs in a checker process of
    its own, never in the submission's."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=128, description="the caller's name for it")
    stdin: str = ""
    expected_stdout: str | None = Field(None, description="stdio: the expected output")
    args: list[Any] = Field(default_factory=list, description="function: positional arguments")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="function: keywords")
    expected: Any = Field(None, description="function: the expected return value (JSON)")
    code: str | None = Field(None, min_length=1, description="assert: Python test code that "
                             "calls the submission's functions (and `candidate`: the entry"
                             " point); it passes if it raises nothing")  # fmt: skip
    command: str | None = Field(
        None, min_length=1, max_length=4096, description="command: a shell line run beside "
        "the program ($PROGRAM runs it); it passes if it exits 0"
    )  # fmt: skip
    files: dict[Annotated[str, StringConstraints(pattern=_FILE_NAME)], str] = Field(
        default_factory=dict,
        max_length=MAX_TEST_FILES,
        description="command: files written beside the program first (name: text)",
    )
    weight: float = Field(1.0, gt=0, le=1e6, description="for scoring: weighted")
    group: str | None = Field(None, min_length=1, max_length=64,
                              description="its subtask, for scoring: subtasks")  # fmt: skip
    cpu_s: float | None = Field(
        None, gt=0, le=MAX_TEST_CPU_S, description="its CPU limit (default: limits.cpu_s)"
    )


class JudgeLimits(BaseModel):
    """Per-test limits. The sandbox's memory limit (the policy's, per language) is the hard
    cap every test runs under; ``memory_mb`` may set a lower one per request."""

    model_config = ConfigDict(extra="forbid")

    cpu_s: float = Field(2.0, gt=0, le=MAX_TEST_CPU_S, description="CPU seconds per test")
    wall_s: float | None = Field(None, gt=0, le=4 * MAX_TEST_CPU_S,
                                 description="wall clock per test (default: enough for cpu_s"
                                 " at the sandbox's CPU share, plus 1 s)")  # fmt: skip
    output_bytes: int = Field(
        1 << 20, ge=1, le=8 << 20, description="stdout per test; past it the verdict is OLE"
    )
    memory_mb: int | None = Field(
        None, ge=1, le=8192, description="peak resident memory per test; past it the verdict "
        "is MLE. Default and ceiling: the sandbox's limit (the policy's memory for the "
        "language). Below that ceiling the peak is measured when the process ends, not "
        "enforced while it runs."
    )  # fmt: skip


class JudgeChecker(BaseModel):
    """A program that judges each stdio test's output, in a sandbox of its own (never the
    submission's). Per test it reads one JSON object on stdin, ``{"input", "output",
    "answer"}`` (the test's stdin, the program's stdout, its expected_stdout), prints its
    verdict as the first word of its first line, ``AC``, ``WA`` or ``PA <score from 0 to 1>``
    (the rest of the line is the test's message), and exits 0. Anything else (another exit
    code, a crash, a signal, its own time limit, no verdict) is IE: the checker failed, never
    a verdict on the program. So a checker must read any output, however hostile."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1)
    language: str = Field("python", min_length=1, max_length=32)
    image: str | None = Field(None, min_length=1, max_length=64)
    cpu_s: float = Field(2.0, gt=0, le=MAX_TEST_CPU_S, description="CPU seconds per check")


class JudgeOptions(BaseModel):
    """Everything of a judge request but the submission's code: the tests and how to run,
    compare and score them (what a group of submissions judged on one test set shares)."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field(
        "python",
        min_length=1,
        max_length=32,
        description="python, javascript, go, c, cpp, rust or java",
    )
    image: str | None = Field(None, min_length=1, max_length=64)
    mode: JudgeMode = Field(
        "stdio",
        description="stdio: stdin to expected stdout; function: call entry_point, compare its"
        " return value as JSON; assert: run test code against the submission (those two:"
        " Python); command: a test's shell line beside the program, judged by its exit status",
    )
    entry_point: str | None = Field(None, max_length=128, pattern=_ENTRY_POINT,
                                    description="the function tests call (function: required;"
                                    " assert: bound as `candidate`); `Class.method` calls it on"
                                    " a new instance")  # fmt: skip
    tests: list[JudgeTest] = Field(..., min_length=1, max_length=MAX_TESTS)
    compare: CompareSpec = Field(default_factory=CompareSpec)
    checker: JudgeChecker | None = Field(
        None, description="stdio: a program that judges each output instead of compare"
    )
    limits: JudgeLimits = Field(default_factory=JudgeLimits)
    stop_on_first_failure: bool = True
    scoring: ScoringMode = "pass_fail"
    subtask_points: dict[str, float] | None = Field(
        None, description="for scoring: subtasks, each group's points (default 1 each)"
    )

    @model_validator(mode="after")
    def _tests_fit_the_mode(self) -> JudgeOptions:
        if self.mode == "function" and self.entry_point is None:
            raise ValueError("mode function needs an entry_point")
        if self.mode == "function" and self.compare.mode != "json":
            if "mode" in self.compare.model_fields_set:
                raise ValueError("mode function compares return values as JSON (compare.mode)")
            self.compare = self.compare.model_copy(update={"mode": "json"})
        if self.checker is not None and self.mode != "stdio":
            raise ValueError(f"mode {self.mode} judges without a checker (checker: stdio only)")
        if self.checker is not None and self.compare != CompareSpec():  # by value (as below)
            raise ValueError("a checker judges the outputs: give checker or compare, not both")
        allowed, required = _MODE_FIELDS[self.mode], _REQUIRED.get(self.mode)
        for index, test in enumerate(self.tests or ()):  # None: by reference, checked later
            # by value, not by fields set: a dumped request (every field) validates the same
            given = {name for name, unset in _UNSET.items() if getattr(test, name) != unset}
            if given - allowed:
                raise ValueError(f"tests[{index}]: {', '.join(sorted(given - allowed))} "
                                 f"not used by mode {self.mode}")  # fmt: skip
            if required and required not in given:
                raise ValueError(f"tests[{index}] needs {required} (mode {self.mode})")
        return self

    @model_validator(mode="after")
    def _groups_for_subtasks(self) -> JudgeOptions:
        if self.scoring == "subtasks" and any(t.group is None for t in self.tests or ()):
            raise ValueError("scoring subtasks needs a group on every test")
        if self.subtask_points and any(p < 0 for p in self.subtask_points.values()):
            raise ValueError("subtask points cannot be negative")
        return self


class JudgeRequest(JudgeOptions):
    """One submission and all its tests."""

    code: str = Field(..., min_length=1)


class MismatchInfo(BaseModel):
    line: int
    column: int
    expected: str
    got: str


class TestResult(BaseModel):
    __test__ = False  # not a pytest test class

    index: int
    id: str | None = None
    verdict: Verdict
    score: float | None = Field(None, description="PA: the checker's score, from 0 to 1")
    limit: Literal["cpu", "wall"] | None = Field(None, description="which limit a TLE hit")
    cpu_ms: float | None = None
    wall_ms: float | None = None
    memory_kb: int | None = Field(None, description="peak resident memory of its process")
    exit_code: int | None = None
    signal: str | None = None
    stdout_preview: str = ""
    stderr_preview: str = ""
    stdout_bytes: int = 0
    mismatch: MismatchInfo | None = None
    message: str | None = None


class JudgeResult(BaseModel):
    id: str
    status: EvalStatus = Field(description="lifecycle: running, then succeeded (judged),"
                               " cancelled or error (the platform failed)")  # fmt: skip
    verdict: Verdict | None = None
    score: float | None = Field(None, description="null when the platform failed (IE)")
    passed: int = 0
    total: int = 0
    first_failure: int | None = None
    compile: CompileResult | None = None
    tests: list[TestResult] = Field(default_factory=list)
    security: SecuritySummary | None = Field(
        None, description="runtime monitoring of its sandboxes (None: not monitored)"
    )
    language: str
    image: str
    runtime: str | None = None
    backend: str | None = None
    compare_version: str
    driver_version: str
    sandboxes: int = Field(0, description="fresh sandboxes it took (one unless one died)")
    duration_ms: float | None = None
    error_code: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    warnings: list[str] = Field(default_factory=list, description="static analysis flags")
    metadata: dict[str, Any] | None = Field(None, description="the caller's, echoed back")
