"""Commands that act on this machine: setup, doctor, run, sweep, languages."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    FileArg,
    ImageOpt,
    LanguageOpt,
    ResultJsonOpt,
    StdinOpt,
    TimeoutOpt,
    err_console,
    print_result,
    read_program,
    reported_errors,
)
from crucible_ray.languages import IMAGES, image_named
from crucible_ray.models import EvalRequest
from crucible_ray.policy import Runtime, SandboxPolicy


def setup(
    now: Annotated[
        list[str] | None,
        typer.Option(
            "--now",
            help="build only these images before returning, the others in "
            "the background (repeatable; default: all of them now)",
        ),
    ] = None,
    no_images: Annotated[
        bool,
        typer.Option(
            "--no-images",
            help="register gVisor and start Docker only (images come from `images import`)",
        ),
    ] = False,
) -> None:
    """Prepare this machine (root): register gVisor, start Docker, build both backends' images
    (signed with this machine's key, created if it has no key at all).

    Safe to run again: it only does what is missing."""
    from crucible_ray import host
    from crucible_ray.cli.images import BUILDERS, build_images
    from crucible_ray.images import background, inventory

    try:
        changed = host.register_runtime()
        state = host.ensure_engine(changed)
    except (RuntimeError, OSError, ValueError) as exc:
        err_console.print(f"[red]setup failed:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    err_console.print(f"docker engine {state}; gVisor {host.runsc_version()} registered")
    if no_images:
        return
    with reported_errors():
        inventory.ensure_local_key(log=lambda line: err_console.print(line))
        first = [image_named(name) for name in now] if now else list(IMAGES.values())
        build_images(BUILDERS, first, log=lambda line: err_console.print(line))
    later = [name for name in IMAGES if now and name not in now]
    if later:
        pid = background.start(later)
        err_console.print(
            f"building {', '.join(later)} in the background (pid {pid}, log "
            f"{background.build_log()}); until then they are image_unavailable"
        )


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    runtime: Annotated[str, typer.Option(help="runtime to check: runsc or runc")] = "runsc",
    backend: BackendOpt = None,
) -> None:
    """Check the backend, runtime, seccomp profile and images; run a probe; print fixes."""
    from crucible_ray.doctor import as_json as checks_json
    from crucible_ray.doctor import run_checks

    checks = run_checks(SandboxPolicy(runtime=_runtime(runtime), **_backend(backend)))
    if as_json:
        typer.echo(checks_json(checks))
    else:
        console = Console()
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            fix = f"  [yellow]fix: {c.fix}[/]" if c.fix and not c.ok else ""
            console.print(f"{mark} {c.name}: {c.detail}{fix}")
    if not all(c.ok for c in checks):
        raise typer.Exit(EXIT_FAILED)


def run(
    file: FileArg,
    language: LanguageOpt = None,
    image: ImageOpt = None,
    stdin: StdinOpt = None,
    timeout: TimeoutOpt = None,
    as_json: ResultJsonOpt = False,
    runtime: Annotated[
        str, typer.Option(help="runsc (gVisor, default) or runc (weaker, explicit opt-in)")
    ] = "runsc",
    backend: BackendOpt = None,
) -> None:
    """Run one program in a fresh sandbox on this machine and print the result.

    Exits 0 whenever the program ran, whatever its status."""
    from crucible_ray.sandbox.runner import SandboxRunner

    code, language, stdin_text = read_program(file, language, stdin, image)
    with reported_errors():
        request = _request(code=code, language=language, image=image, stdin=stdin_text,
                           timeout_s=timeout)  # fmt: skip
        policy = SandboxPolicy(runtime=_runtime(runtime), **_backend(backend))
        with SandboxRunner(policy) as runner:
            result = runner.run(request)
    print_result(result, as_json)


def sweep(
    everything: Annotated[
        bool, typer.Option("--all", help="also remove sandboxes of live processes")
    ] = False,
    backend: BackendOpt = None,
) -> None:
    """Remove sandboxes left behind by crashed or killed processes (every backend, or one)."""
    from crucible_ray.paths import sandboxes_dir
    from crucible_ray.sandbox.registry import make_backend, sweep_every_backend

    with reported_errors():
        if backend in (None, "auto"):
            swept = sweep_every_backend(sandboxes_dir(), everything=everything)
        else:
            _backend(backend)
            swept = {backend: make_backend(backend).sweep(sandboxes_dir(), everything=everything)}
    for name, removed in swept.items():
        if isinstance(removed, int):
            typer.echo(f"{name}: removed {removed} sandbox(es)")
        else:
            typer.echo(f"{name}: not swept ({removed})")


BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", help="sandbox backend: docker or runsc (default: auto, the "
                 "cheapest that can enforce the policy here; see `doctor`)"),
]  # fmt: skip


def _backend(value: str | None) -> dict[str, str]:
    from crucible_ray.sandbox.registry import BACKEND_NAMES

    if value is None:
        return {}
    if value not in ("auto", *BACKEND_NAMES):
        err_console.print(f"unknown backend {value!r}: use auto, {' or '.join(BACKEND_NAMES)}")
        raise typer.Exit(EXIT_USAGE)
    return {"backend": value}


def _runtime(value: str) -> Runtime:
    if value not in ("runsc", "runc"):
        err_console.print(f"unknown runtime {value!r}: use runsc or runc")
        raise typer.Exit(EXIT_USAGE)
    return value  # type: ignore[return-value]


def _request(**fields: object) -> EvalRequest:
    from pydantic import ValidationError

    from crucible_ray.errors import InvalidRequest

    try:
        return EvalRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRequest(first["msg"], field=".".join(map(str, first["loc"]))) from None


def languages(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the languages and their images: package versions, compile command, limits."""
    from crucible_ray.catalog import languages as catalog

    infos = catalog(SandboxPolicy())
    if as_json:
        typer.echo(json.dumps([info.model_dump() for info in infos], indent=2))
        return
    table = Table("image", "language", "digest", "versions", "compile (memory, processes, time)",
                  "run (memory, processes, CPU, time)")  # fmt: skip
    for info in infos:
        versions = ", ".join(f"{k} {v}" for k, v in (info.versions or {}).items()) or "unknown here"
        stage, run_ = info.compile, info.run
        compiled = "-" if stage is None else (
            f"{stage.memory_mb} MiB, {stage.pids_limit}, {stage.timeout_s:g} s"
        )  # fmt: skip
        language = info.language if info.default else f"{info.language} (variant)"
        table.add_row(info.name, language, info.image, versions, compiled,
                      f"{run_.memory_mb} MiB, {run_.pids_limit}, {run_.cpus:g}, "
                      f"{run_.timeout_s:g} s (max {run_.max_timeout_s:g})")  # fmt: skip
    Console().print(table)


def register(app: typer.Typer) -> None:
    for command in (setup, doctor, run, sweep, languages):
        app.command()(command)
