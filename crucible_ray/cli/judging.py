"""``crucible-ray judge``: judge one program against its tests, on a server or on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import (
    EXIT_USAGE,
    FileArg,
    ImageOpt,
    LanguageOpt,
    err_console,
    read_program,
    reported_errors,
)
from crucible_ray.cli.remote import TokenOpt, UrlOpt
from crucible_ray.judge.models import JudgeRequest, JudgeResult

TestsOpt = Annotated[
    Path,
    typer.Option("--tests", "-t", help="the tests: a JSON array or JSON Lines of objects: stdin"
                 " and expected_stdout (mode stdio), args, kwargs and expected (function), code"
                 " (assert); optionally id, weight, group, cpu_s"),
]  # fmt: skip
ModeOpt = Annotated[
    str, typer.Option(help="stdio, function (call --entry-point) or assert (run test code)")
]
EntryPointOpt = Annotated[
    str | None, typer.Option(help="the function tests call (or Class.method)")
]
CompareOpt = Annotated[
    str | None,
    typer.Option(help="exact, trailing_whitespace (stdio's default), lines, tokens, numeric,"
                 " json (function's default) or regex"),
]  # fmt: skip
CaseOpt = Annotated[bool, typer.Option(help="compare ignoring case")]
CpuOpt = Annotated[float, typer.Option("--cpu", help="CPU seconds per test")]
KeepGoingOpt = Annotated[
    bool, typer.Option(help="run every test, not stopping at the first failure")
]
ScoringOpt = Annotated[str, typer.Option(help="pass_fail, fraction, weighted or subtasks")]
COLOURS = {"AC": "green", "WA": "red", "TLE": "yellow", "MLE": "yellow", "OLE": "yellow",
           "RE": "red", "CE": "magenta", "SKIPPED": "dim", "IE": "red", "PA": "cyan"}  # fmt: skip


def read_tests(path: Path) -> list[dict[str, Any]]:
    """The tests in ``path``: a JSON array, or one JSON object per line."""
    try:
        text = path.read_text()
        stripped = text.lstrip()
        if stripped.startswith("["):
            tests = json.loads(text)
        else:
            tests = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        err_console.print(f"cannot read the tests: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        err_console.print("the tests must be JSON objects")
        raise typer.Exit(EXIT_USAGE)
    return tests


def judge_command(
    file: FileArg,
    tests: TestsOpt,
    language: LanguageOpt = None,
    image: ImageOpt = None,
    mode: ModeOpt = "stdio",
    entry_point: EntryPointOpt = None,
    compare: CompareOpt = None,
    case_insensitive: CaseOpt = False,
    cpu_s: CpuOpt = 2.0,
    keep_going: KeepGoingOpt = False,
    scoring: ScoringOpt = "pass_fail",
    as_json: Annotated[bool, typer.Option("--json", help="print the JudgeResult as JSON")] = False,
    local: Annotated[bool, typer.Option(help="judge on this machine (no server)")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    deadline: Annotated[float, typer.Option(help="seconds to keep retrying and waiting")] = 600.0,
) -> None:
    """Judge one program against its tests, in one fresh sandbox: compiled once, a fresh
    process per test, each output compared outside the sandbox. Prints each test's verdict.

    Exits 0 whenever the program was judged (whatever the verdict), 2 for an invalid request,
    3 when sandboxes are unavailable or the deadline passed, 4 when authentication fails."""
    code, language, _ = read_program(file, language, None, image)
    fields = judge_options(mode, entry_point, compare, case_insensitive, cpu_s, keep_going,
                           scoring)  # fmt: skip
    try:
        request = JudgeRequest(code=code, language=language, image=image,
                               tests=read_tests(tests), **fields)  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"[red]invalid request ({where}):[/] {first['msg']}")
        raise typer.Exit(EXIT_USAGE) from None
    with reported_errors():
        result = _judge_here(request) if local else _judge_there(request, url, token, deadline)
    print_judgement(result, as_json)


def judge_options(mode: str, entry_point: str | None, compare: str | None,
                  case_insensitive: bool, cpu_s: float, keep_going: bool,
                  scoring: str) -> dict[str, Any]:  # fmt: skip
    """The JudgeRequest fields the options above stand for."""
    comparison: dict[str, Any] = {"case_insensitive": case_insensitive}
    if compare is not None:
        comparison["mode"] = compare
    return {"compare": comparison, "mode": mode, "entry_point": entry_point,
            "limits": {"cpu_s": cpu_s}, "stop_on_first_failure": not keep_going,
            "scoring": scoring}  # fmt: skip


def _judge_here(request: JudgeRequest) -> JudgeResult:
    from crucible_ray.judge import judge
    from crucible_ray.sandbox.runner import SandboxRunner

    with SandboxRunner() as runner:
        return judge(runner, request)


def _judge_there(request: JudgeRequest, url: str | None, token: str | None,
                 deadline: float) -> JudgeResult:  # fmt: skip
    from crucible_ray.client import Client

    options = request.model_dump(exclude={"code", "tests", "language", "image"}, exclude_unset=True)
    with Client(url, token, deadline_s=deadline) as client:
        return client.judge(request.code, request.tests, language=request.language,
                            image=request.image, **options)  # fmt: skip


def print_judgement(result: JudgeResult, as_json: bool = False) -> None:
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    console = Console(highlight=False)
    table = Table("test", "verdict", "CPU ms", "wall ms", "memory KiB", "detail")
    for test in result.tests:
        detail = test.message or ""
        if test.mismatch is not None:
            m = test.mismatch
            detail = f"line {m.line}, column {m.column}: expected {m.expected!r}, got {m.got!r}"
        colour = COLOURS.get(test.verdict, "white")
        table.add_row(test.id or str(test.index), f"[{colour}]{test.verdict}[/]",
                      _number(test.cpu_ms), _number(test.wall_ms), _number(test.memory_kb),
                      detail)  # fmt: skip
    if result.tests:
        console.print(table)
    if result.compile is not None and result.compile.status != "ok":
        console.rule(f"compile: {result.compile.status}", style="dim")
        console.out(result.compile.output)
    colour = COLOURS.get(result.verdict or "IE", "red")
    score = "none" if result.score is None else f"{result.score:g}"
    console.print(f"[{colour}]{result.verdict or result.status}[/]: score {score}, "
                  f"{result.passed}/{result.total} passed ({result.status})")  # fmt: skip
    if result.error:
        console.print(f"[red]error:[/] {result.error}")


def _number(value: float | int | None) -> str:
    return "" if value is None else f"{value:.0f}"


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_command)
