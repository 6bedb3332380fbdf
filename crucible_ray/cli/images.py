"""``crucible-ray images build|list``."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import reported_errors
from crucible_ray.images.build import build_image, list_images
from crucible_ray.languages import LANGUAGES, get_language
from crucible_ray.sandbox.docker.engine import Engine

app = typer.Typer(help="Build and list the sandbox images (built offline from Debian).",
                  no_args_is_help=True, rich_markup_mode="markdown")  # fmt: skip
LanguageOpt = Annotated[
    list[str] | None, typer.Option("--language", "-l", help="only this language (repeatable)")
]


@app.command("build")
def build(
    language: LanguageOpt = None,
    force: Annotated[bool, typer.Option(help="rebuild even when up to date")] = False,
) -> None:
    """Build the images that are missing (or all of them with --force)."""
    with reported_errors():
        specs = [get_language(name) for name in language] if language else list(LANGUAGES.values())
        api = Engine().api
        for spec in specs:
            build_image(api, spec, force=force, log=lambda line: typer.echo(line, err=True))


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show each language's image tag and whether it is built."""
    with reported_errors():
        statuses = list_images(Engine().api, list(LANGUAGES.values()))
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in statuses], indent=2))
        return
    table = Table("language", "tag", "built", "size MB", "created")
    for s in statuses:
        table.add_row(s.language, s.tag, "yes" if s.present else "NO", str(s.size_mb or ""),
                      s.created or "")  # fmt: skip
    Console().print(table)
