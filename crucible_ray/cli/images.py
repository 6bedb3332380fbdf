"""``crucible-ray images build|list``."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Annotated

import docker
import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.catalog import image_versions
from crucible_ray.cli.common import EXIT_USAGE, err_console, reported_errors
from crucible_ray.images import inventory, records
from crucible_ray.images.build import build_image, image_present, list_images
from crucible_ray.images.local import build_local_image, local_image_present
from crucible_ray.images.rootfs import built_rootfs
from crucible_ray.images.signing import signing_key_path
from crucible_ray.languages import IMAGES, LanguageSpec, image_named
from crucible_ray.sandbox.docker.engine import Engine

app = typer.Typer(help="Build and list the sandbox images (built offline from Debian).",
                  no_args_is_help=True, rich_markup_mode="markdown")  # fmt: skip
LanguageOpt = Annotated[
    list[str] | None,
    typer.Option("--language", "-l", help="only this image: a language or a variant (repeatable)"),
]


BUILDERS = ("docker", "runsc")  # a Docker image per language; a root image on disk for runsc


def build_images(backends: tuple[str, ...], specs: list[LanguageSpec], *, force: bool = False,
                 log: Callable[[str], None] = print) -> None:  # fmt: skip
    """Build what ``backends`` need for ``specs``, several languages at once (debootstrap mostly
    waits on the mirror and the disk), one debootstrap per language for all backends, then
    sign what is built with the operator's key; the first failure is raised once all ended."""
    api = Engine().api if "docker" in backends else None
    with ThreadPoolExecutor(3, thread_name_prefix="image-build") as pool:
        futures = [pool.submit(_build_language, api, "runsc" in backends, spec, force, log)
                   for spec in specs]  # fmt: skip
    built = [spec for spec, future in zip(specs, futures, strict=True) if not future.exception()]
    inventory.sign_present(inventory.present(api, backends, built), signing_key_path(), log)
    for future in futures:
        future.result()


def _build_language(api: docker.APIClient | None, runsc: bool, spec: LanguageSpec, force: bool,
                    log: Callable[[str], None]) -> None:  # fmt: skip
    docker_missing = api is not None and (force or not image_present(api, spec))
    runsc_missing = runsc and (force or not local_image_present(spec))
    if not (docker_missing or runsc_missing):
        log(f"{spec.name}: up to date")
        return
    with built_rootfs(spec, log=log) as rootfs:
        if docker_missing:
            assert api is not None
            build_image(api, spec, force=True, rootfs=rootfs, log=log)
        if runsc_missing:
            build_local_image(spec, force=True, rootfs=rootfs, log=log)


@app.command("build")
def build(
    language: LanguageOpt = None,
    force: Annotated[bool, typer.Option(help="rebuild even when up to date")] = False,
    backend: Annotated[
        str | None, typer.Option(help="only this backend's images: docker or runsc (default: both)")
    ] = None,
) -> None:
    """Build the images that are missing (or all of them with --force)."""
    if backend is not None and backend not in BUILDERS:
        err_console.print(f"unknown backend {backend!r}: use docker or runsc")
        raise typer.Exit(EXIT_USAGE)
    with reported_errors():
        specs = [image_named(name) for name in language] if language else list(IMAGES.values())
        build_images((backend,) if backend else BUILDERS, specs, force=force,
                     log=lambda line: typer.echo(line, err=True))  # fmt: skip


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show each image (a language's, or a variant): digest, whether each backend has it,
    packages and versions."""
    with reported_errors():
        statuses = list_images(Engine().api, list(IMAGES.values()))
    rows = []
    for s in statuses:
        spec = IMAGES[s.language]
        extra = {"runsc_present": local_image_present(spec), "packages": list(spec.packages),
                 "versions": image_versions(spec), "sbom": _sboms(spec)}  # fmt: skip
        rows.append({**asdict(s), **extra})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("image", "tag", "docker", "runsc", "versions", "SBOM", "size MB", "created")
    for row in rows:
        versions = ", ".join(f"{k} {v}" for k, v in (row["versions"] or {}).items())
        table.add_row(row["language"], row["tag"], "yes" if row["present"] else "NO",
                      "yes" if row["runsc_present"] else "NO", versions or "?",
                      " ".join(f"{b}:{n['packages']}" for b, n in row["sbom"].items()) or "none",
                      str(row["size_mb"] or ""), row["created"] or "")  # fmt: skip
    Console().print(table)


def _sboms(spec: LanguageSpec) -> dict[str, dict[str, object]]:
    """Each backend's SBOM record of ``spec``: where it is, how many packages it lists."""
    found: dict[str, dict[str, object]] = {}
    for backend in BUILDERS:
        path = records.record_dir(backend, spec) / records.SBOM
        if path.is_file():
            found[backend] = {"path": str(path),
                              "packages": len(records.sbom_packages(backend, spec))}  # fmt: skip
    return found
