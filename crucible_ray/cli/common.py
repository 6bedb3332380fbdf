"""Helpers shared by CLI commands: exit codes and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from crucible_ray.errors import CrucibleError, InvalidRequest, SandboxUnavailable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

err_console = Console(stderr=True)


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
    except CrucibleError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
