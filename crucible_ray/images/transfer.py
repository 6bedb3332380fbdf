"""Moving built and signed images between machines without a registry.

The build machine (which holds the signing key) exports each image as one tar file with its
record: ``docker save`` output for the docker backend, the root image directory for runsc.
An executor node (which holds only the public keys) imports them into a staging directory and
verifies each there (content, SBOM, signature) before it replaces anything: an import never
leaves an untrusted image in use. (A refused Docker image stays loaded in the engine, but with
no record beside it, which executors refuse.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker

from crucible_ray.errors import ImageMissing, ImageUntrusted
from crucible_ray.images import records, signing
from crucible_ray.images.inventory import Built
from crucible_ray.images.local import image_path, images_dir, verify_image
from crucible_ray.languages import IMAGES, LanguageSpec

ABOUT = "about.json"  # in each export: what it is, checked against this machine's recipe


def export_images(api: docker.APIClient | None, built: list[Built], out: Path,
                  log: Callable[[str], None]) -> list[Path]:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for image in built:
        reference = records.reference(image.backend, image.spec)
        target = out / f"{image.backend}-{reference.replace(':', '-')}.tar"
        with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as work:
            stage = Path(work)
            about = {"backend": image.backend, "language": image.spec.name,
                     "reference": reference, "digest": image.digest}  # fmt: skip
            (stage / ABOUT).write_text(json.dumps(about))
            if image.backend == "docker":
                assert api is not None
                with (stage / "image.tar").open("wb") as f:
                    for chunk in api.get_image(reference):
                        f.write(chunk)
                shutil.copytree(records.record_dir("docker", image.spec), stage / "record")
                members = [ABOUT, "image.tar", "record"]
            else:
                members = [ABOUT]
            _tar(target, stage, members, image_path(image.spec) if image.backend == "runsc"
                 else None)  # fmt: skip
        log(f"{reference} ({image.backend}): exported to {target}")
        written.append(target)
    return written


def import_images(api: docker.APIClient | None, archives: list[Path],
                  log: Callable[[str], None]) -> list[str]:  # fmt: skip
    """Import and verify each archive; returns the problems (empty: all kept)."""
    problems = []
    for archive in archives:
        try:
            log(_import_one(api, archive))
        except (ImageMissing, OSError, ValueError, subprocess.CalledProcessError) as exc:
            problems.append(f"{archive.name}: {exc}")
            log(f"{archive.name}: refused: {exc}")
    return problems


def _import_one(api: docker.APIClient | None, archive: Path) -> str:
    images_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=images_dir(), prefix=".import-") as work:
        stage = Path(work)  # a state root of its own: everything is verified there first
        subprocess.run(["tar", "-C", str(stage), "--numeric-owner", "-xf", str(archive)],
                       check=True, capture_output=True)  # fmt: skip
        about = json.loads((stage / ABOUT).read_text())
        spec, backend = _spec(about), about["backend"]
        if about["reference"] != records.reference(backend, spec):
            raise ImageMissing(f"{about['reference']} is not built by this crucible-ray's recipe "
                               f"(it expects {records.reference(backend, spec)})")  # fmt: skip
        staged = records.record_dir(backend, spec, stage)
        staged.parent.mkdir(parents=True, exist_ok=True)
        (stage / ("image" if backend == "runsc" else "record")).rename(staged)
        if backend == "runsc":
            verify_image(spec, "directory", stage)
            if (staged / "rootfs.erofs").exists():
                verify_image(spec, "erofs", stage)
            digest = records.runsc_digest(spec, stage)
        else:
            if api is None:
                raise ImageMissing("importing a docker image needs the engine")
            with (stage / "image.tar").open("rb") as f:
                api.load_image(f)
            digest = api.inspect_image(about["reference"])["Id"]
        trust = records.check(backend, spec, digest, stage, trusted=signing.trusted_dir())
        if trust.problem is not None:
            raise ImageUntrusted(trust.problem)
        target = records.record_dir(backend, spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        replaced = target.with_name(f".{target.name}.replaced")
        if target.exists():
            target.rename(replaced)
        staged.rename(target)
        shutil.rmtree(replaced, ignore_errors=True)
        return f"{about['reference']} ({backend}): imported, signed by {trust.signed_by}"


def _spec(about: dict) -> LanguageSpec:
    if about.get("language") not in IMAGES or about.get("backend") not in ("docker", "runsc"):
        raise ImageMissing(f"not an image export of this crucible-ray: {about!r:.200}")
    return IMAGES[about["language"]]


def _tar(target: Path, stage: Path, members: list[str], runsc_image: Path | None) -> None:
    partial = target.with_name(f".{target.name}.partial")
    command = ["tar", "--numeric-owner", "-cf", str(partial), "-C", str(stage), *members]
    if runsc_image is not None:  # the whole image directory, as "image/"
        command += ["-C", str(runsc_image.parent),
                    f"--transform=s,^{runsc_image.name},image,", runsc_image.name]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    partial.rename(target)  # whole or absent
