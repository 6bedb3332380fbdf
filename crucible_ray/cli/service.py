"""``crucible-ray up|down|serve|token|keygen``: the HTTP service on the local cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from crucible_ray.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE, err_console


def _settings():
    from crucible_ray.settings import Settings

    try:
        return Settings()
    except ValueError as exc:
        err_console.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None


def token(
    user: Annotated[str, typer.Option(help="the user the token identifies")],
    ttl: Annotated[
        int, typer.Option(min=60, help="lifetime in seconds (at most CRUCIBLE_JWT_MAX_TTL_S)")
    ] = 86400,
    operator: Annotated[
        bool, typer.Option("--operator", help="may see the dashboard (every user's activity)")
    ] = False,
) -> None:
    """Print a JWT for USER, signed with the private key (`CRUCIBLE_JWT_PRIVATE_KEY`) or else
    the server's secret."""
    from crucible_ray.api.auth import OPERATOR, issue_token, signer_of

    settings = _settings()
    roles = [OPERATOR] if operator else []
    try:
        typer.echo(issue_token(signer_of(settings), user, ttl, roles))
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def keygen(
    private_key: Annotated[
        Path, typer.Option("--private-key", help="where to write the new private key (0600)")
    ],
) -> None:
    """Make an Ed25519 key pair for tokens: the private key goes to a new 0600 file (for
    `CRUCIBLE_JWT_PRIVATE_KEY`, where tokens are issued); the public key is printed as a JWKS
    (for `CRUCIBLE_JWT_PUBLIC_KEYS` on the ingress; add its entry beside the old key's to
    rotate)."""
    import json
    import os

    from crucible_ray.api.auth import generate_private_key

    pem, jwks = generate_private_key()
    try:
        fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        err_console.print(f"[red]cannot create {private_key}: {exc.strerror}[/]")
        raise typer.Exit(2) from None
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    typer.echo(json.dumps(jwks))


def up(
    executors: Annotated[
        int | None,
        typer.Option(min=1, help="executor nodes (default 1 if a cluster is started)"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for /healthz")] = 180.0,
) -> None:
    """Start the local cluster if none runs, deploy the API, return once /healthz answers 200."""
    import httpx

    from crucible_ray.api.deployment import deploy
    from crucible_ray.cluster import local

    settings = _settings()
    try:
        local.up(executors=executors, default_executors=1)
        local.connect()
        deploy(settings)
    except local.ClusterError as exc:
        err_console.print(f"[red]cluster:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    url = f"http://{settings.host}:{settings.port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                err_console.print(f"crucible-ray is up: {url}  (docs: {url}/docs)")
                typer.echo(url)
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    err_console.print(f"[red]{url}/healthz did not answer 200 within {timeout:.0f}s[/]")
    raise typer.Exit(EXIT_UNAVAILABLE)


def down() -> None:
    """Stop the API and the local cluster that `up` started."""
    from crucible_ray.cluster import local

    try:
        local.connect()
        from crucible_ray.api.deployment import undeploy

        undeploy()
        local.down()
    except local.ClusterError as exc:
        err_console.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    err_console.print("crucible-ray is down")


def serve(
    executors: Annotated[
        int | None,
        typer.Option(min=1, help="executor nodes (default 1 if a cluster is started)"),
    ] = None,
) -> None:
    """Like `up`, in the foreground: Ctrl-C stops everything."""
    up(executors=executors)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        down()


def register(app: typer.Typer) -> None:
    for command in (up, down, serve, token, keygen):
        app.command()(command)
