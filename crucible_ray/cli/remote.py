"""``crucible-ray eval``: run one program on a crucible-ray server over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from crucible_ray.cli.common import (
    FileArg,
    ImageOpt,
    LanguageOpt,
    ResultJsonOpt,
    StdinOpt,
    TimeoutOpt,
    print_result,
    read_program,
    reported_errors,
)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="CRUCIBLE_URL", help="server base URL")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="CRUCIBLE_TOKEN", help="JWT (crucible-ray token --user U)"),
]


def eval_(
    file: FileArg,
    language: LanguageOpt = None,
    image: ImageOpt = None,
    stdin: StdinOpt = None,
    timeout: TimeoutOpt = None,
    as_json: ResultJsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    deadline: Annotated[
        float, typer.Option(help="seconds to keep retrying and waiting in all")
    ] = 600.0,
) -> None:
    """Run one program on a crucible-ray server and print the result.

    Exits 0 whenever the program ran (whatever its status), 2 for an invalid request,
    3 when the server cannot take it before the deadline, 4 when authentication fails."""
    from crucible_ray.client import Client

    code, language, stdin_text = read_program(file, language, stdin, image)
    with reported_errors(), Client(url, token, deadline_s=deadline) as client:
        result = client.evaluate(code, language=language, image=image, stdin=stdin_text,
                                 timeout_s=timeout)  # fmt: skip
    print_result(result, as_json)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_)
