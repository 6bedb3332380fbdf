"""``crucible-ray images keygen|sign|verify|scan|sbom``: the supply-chain commands."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import EXIT_FAILED, EXIT_USAGE, err_console, reported_errors
from crucible_ray.errors import ImageMissing
from crucible_ray.images import advisories, inventory, records, signing, transfer
from crucible_ray.images.local import verify_image
from crucible_ray.images.sbom import packages, service_sbom
from crucible_ray.languages import IMAGES, image_named
from crucible_ray.sandbox.docker.engine import Engine

BACKENDS = ("docker", "runsc")
LanguageOpt = Annotated[list[str] | None, typer.Option("--language", "-l",
                        help="only this image: a language or a variant (repeatable)")]  # fmt: skip
BackendOpt = Annotated[str | None, typer.Option(help="only this backend: docker or runsc")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
_KEY_HELP = (
    f"the Ed25519 private key (PEM); default ${signing.SIGNING_KEY_ENV} or "
    "<state>/keys/image-signing.pem"
)
KeyOpt = Annotated[Path | None, typer.Option("--key", help=_KEY_HELP)]
AdvisoriesOpt = Annotated[
    Path,
    typer.Option(
        "--advisories",
        exists=True,
        help="OSV advisories: a directory of .json files, a .zip of them, or one .json file",
    ),
]
ServiceScanOpt = Annotated[bool, typer.Option(help="also scan the service's Python environment")]
FailOnOpt = Annotated[
    str,
    typer.Option(
        help="exit 1 at or above this severity: low, medium, high or critical (unknown: high)"
    ),
]


def register(app: typer.Typer) -> None:
    for command in (keygen, sign, verify, scan, sbom, export):
        app.command(command.__name__)(command)
    app.command("import")(import_)


def keygen(key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Create an image signing key pair: the private key (0600, never overwritten) and its
    public half in the trusted keys directory. For a cluster, keep the private key on the
    build machine and give executors only the `.pub` file."""
    path = key or signing.signing_key_path()
    try:
        kid = signing.generate_key(path, signing.trusted_dir())
    except FileExistsError:
        _fail(as_json, f"{path} exists: not overwritten", EXIT_USAGE)
    typer.echo(json.dumps({"key_id": kid, "key": str(path)}) if as_json else kid)


def sign(language: LanguageOpt = None, backend: BackendOpt = None, key: KeyOpt = None) -> None:
    """Sign the built images (their content digest and SBOM) with the operator's key; other
    keys' signatures stay (key rotation)."""
    path = key or signing.signing_key_path()
    if not path.is_file():
        _fail(False, f"no signing key at {path}: `crucible-ray images keygen` or --key", EXIT_USAGE)
    with reported_errors():
        built = _built(language, backend)
        inventory.sign_present(built, path, log=lambda line: typer.echo(line, err=True))


def verify(language: LanguageOpt = None, backend: BackendOpt = None, as_json: JsonOpt = False,
           ) -> None:  # fmt: skip
    """Check every built image against the trusted keys, as executors do before running it
    (and that a runsc root image's files are intact). Exits 1 when any is refused."""
    with reported_errors():
        rows = []
        for image in _built(language, backend):
            trust = records.check(image.backend, image.spec, image.digest)
            problem = trust.problem or _altered(image)
            rows.append({**asdict(trust), "problem": problem})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table("image", "backend", "reference", "signed by", "problem")
        for row in rows:
            table.add_row(row["language"], row["backend"], row["reference"],
                          row["signed_by"] or "", row["problem"] or "")  # fmt: skip
        Console().print(table)
    if any(row["problem"] for row in rows):
        raise typer.Exit(EXIT_FAILED)


def scan(
    advisory_db: AdvisoriesOpt,
    language: LanguageOpt = None,
    backend: BackendOpt = None,
    service: ServiceScanOpt = False,
    fail_on: FailOnOpt = "high",
    as_json: JsonOpt = False,
) -> None:
    """Match each image's SBOM against an offline advisory database; report by severity."""
    if fail_on not in advisories.SEVERITIES[1:]:
        _fail(as_json, f"--fail-on must be one of {', '.join(advisories.SEVERITIES[1:])}",
              EXIT_USAGE)  # fmt: skip
    try:
        db = advisories.load(advisory_db)
    except advisories.AdvisoryError as exc:
        _fail(as_json, f"advisory database: {exc}", EXIT_USAGE)
    with reported_errors():
        targets = {f"{i.spec.name} ({i.backend})": records.sbom_packages(i.backend, i.spec)
                   for i in _built(language, backend)}  # fmt: skip
        if service:
            targets["service"] = packages(service_sbom())
    report = {name: [asdict(f) for f in advisories.scan(found, db)]
              for name, found in targets.items()}  # fmt: skip
    worst = [f for found in report.values() for f in found
             if advisories.rank(f["severity"]) >= advisories.rank(fail_on)]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"advisories": len(db), "images": report, "failing": len(worst)},
                              indent=2))  # fmt: skip
    else:
        table = Table("image", "package", "version", "advisory", "severity", "fixed in")
        for name, found in report.items():
            for f in found:
                table.add_row(name, f["package"], f["version"], f["advisory"], f["severity"],
                              f["fixed"] or "")  # fmt: skip
        Console().print(table)
        total = sum(map(len, report.values()))
        err_console.print(f"{total} findings in {len(report)} SBOMs ({len(db)} advisories); "
                          f"{len(worst)} at or above {fail_on}")  # fmt: skip
    if worst:
        raise typer.Exit(EXIT_FAILED)


def sbom(
    language: Annotated[str | None, typer.Option("--language", "-l", help="this image's")] = None,
    backend: Annotated[str, typer.Option(help="whose record: docker or runsc")] = "runsc",
    service: Annotated[bool, typer.Option(help="the service's Python environment")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it here")] = None,
) -> None:
    """Print (or write) a CycloneDX SBOM: an image's, or the service's Python environment's."""
    if service == (language is not None):
        _fail(False, "give --language NAME or --service", EXIT_USAGE)
    with reported_errors():
        if service:
            text = service_sbom()
        else:
            path = records.record_dir(_backend(backend), image_named(language)) / records.SBOM
            if not path.is_file():
                _fail(False, f"no SBOM for {language} ({backend}): build it first", EXIT_FAILED)
            text = path.read_text()
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)


def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for the tar files")],
    language: LanguageOpt = None,
    backend: BackendOpt = None,
) -> None:
    """Write each built image with its record (SBOM, signatures) as one tar file, for
    `images import` on machines that must not build or sign (executor nodes)."""
    with reported_errors():
        built = _built(language, backend)
        api = Engine().api if any(i.backend == "docker" for i in built) else None
        transfer.export_images(api, built, output, log=lambda line: typer.echo(line, err=True))


ArchivesArg = Annotated[
    list[Path], typer.Argument(help="tar files from `images export`", exists=True, dir_okay=False)
]


def import_(archives: ArchivesArg) -> None:
    """Import exported images, each verified (content, SBOM, signature against this machine's
    trusted keys) before it replaces anything. Exits 1 when any is refused."""
    with reported_errors():
        needs_docker = any(a.name.startswith("docker-") for a in archives)
        api = Engine().api if needs_docker else None
        problems = transfer.import_images(
            api, archives, log=lambda line: typer.echo(line, err=True)
        )
    if problems:
        raise typer.Exit(EXIT_FAILED)


def _built(language: list[str] | None, backend: str | None) -> list[inventory.Built]:
    backends = (_backend(backend),) if backend else BACKENDS
    specs = [image_named(name) for name in language] if language else list(IMAGES.values())
    api = Engine().api if "docker" in backends else None
    return inventory.present(api, backends, specs)


def _backend(name: str) -> str:
    if name not in BACKENDS:
        _fail(False, f"unknown backend {name!r}: use docker or runsc", EXIT_USAGE)
    return name


def _altered(image: inventory.Built) -> str | None:
    if image.backend != "runsc":
        return None  # the engine checks its layers' digests itself
    try:
        verify_image(image.spec, "directory")
    except ImageMissing as exc:  # altered or half built: the same refusal at run time
        return str(exc)
    return None


def _fail(as_json: bool, message: str, code: int) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        err_console.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)
