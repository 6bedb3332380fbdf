"""Helpers shared by CLI commands: exit codes, error reporting, reading and printing
programs and results."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crucible_ray.errors import (
    AuthenticationError,
    CrucibleError,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    SandboxUnavailable,
)
from crucible_ray.languages import IMAGES
from crucible_ray.models import EvalResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130

EXTENSIONS = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".go": "go",
              ".c": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".rs": "rust",
              ".java": "java"}  # fmt: skip

err_console = Console(stderr=True)

# The options of the commands that run one program (``run`` here, ``eval`` on a server).
FileArg = Annotated[str, typer.Argument(help="program file, or - to read it from stdin")]
LanguageOpt = Annotated[
    str | None,
    typer.Option("--language", "-l", help="python, javascript, go, c, cpp, rust or java"),
]
ImageOpt = Annotated[
    str | None,
    typer.Option("--image", help="a variant image of the language, e.g. python-science"),
]
StdinOpt = Annotated[
    Path | None, typer.Option("--stdin", help="file given to the program as its stdin")
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", help="seconds (at most the policy's max_timeout_s)")
]
ResultJsonOpt = Annotated[bool, typer.Option("--json", help="print the EvalResult as JSON")]


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn crucible errors into one clear line on stderr and a meaningful exit code."""
    try:
        yield
    except InvalidRequest as exc:
        field = f" ({exc.field})" if exc.field else ""
        err_console.print(f"[red]invalid request{field}:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except SandboxUnavailable as exc:
        err_console.print(f"[red]sandboxes unavailable:[/] {exc}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except DeadlineExceeded as exc:
        err_console.print(f"[red]gave up:[/] {exc}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except AuthenticationError as exc:
        err_console.print(f"[red]authentication failed:[/] {exc}")
        raise typer.Exit(EXIT_AUTH) from None
    except NotFound as exc:
        err_console.print(f"[red]not found:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    except CrucibleError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def read_program(file: str, language: str | None, stdin: Path | None,
                 image: str | None = None) -> tuple[str, str, str]:  # fmt: skip
    """(code, language, stdin) from a file or ``-``; the language from the image, else from
    the file's suffix."""
    if language is None and image in IMAGES:
        language = IMAGES[image].language
    if language is None:
        language = EXTENSIONS.get(Path(file).suffix, "python" if file == "-" else None)
        if language is None:
            err_console.print("cannot tell the language from the file name; pass --language")
            raise typer.Exit(EXIT_USAGE)
    try:
        code = sys.stdin.read() if file == "-" else Path(file).read_text()
        stdin_text = stdin.read_text() if stdin else ""
    except (OSError, UnicodeDecodeError) as exc:
        err_console.print(f"cannot read input: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    return code, language, stdin_text


def print_result(result: EvalResult, as_json: bool = False) -> None:
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    console = Console(highlight=False)
    colour = {"succeeded": "green", "failed": "red", "compile_error": "magenta",
              "timed_out": "yellow"}.get(result.status, "red")  # fmt: skip
    facts = [f"exit {result.exit_code}" if result.exit_code is not None else None,
             f"{result.duration_ms:.0f} ms" if result.duration_ms is not None else None,
             result.runtime, "OOM killed" if result.oom_killed else None,
             "output truncated" if result.truncated else None]  # fmt: skip
    console.print(f"[{colour}]{result.status}[/] ({', '.join(f for f in facts if f)})")
    if result.compile is not None:
        stage = result.compile
        console.rule(f"compile: {stage.status} ({stage.duration_ms:.0f} ms)", style="dim")
        if stage.output:
            console.out(stage.output, end="" if stage.output.endswith("\n") else "\n")
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            console.rule(name, style="dim")
            console.out(text, end="" if text.endswith("\n") else "\n")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if result.error:
        console.print(f"[red]error:[/] {result.error}")
