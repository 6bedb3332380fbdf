"""Build the sandbox images: ``debootstrap`` a minimal Debian root, add the language's packages
and launcher, strip package managers and setuid bits, ``docker import`` it.

Tags are content-addressed on the recipe's inputs (this file's recipe version, the Debian suite,
the packages, the launcher's bytes), so an unchanged image is never rebuilt and a changed
launcher always is. (The mirror can ship security updates under the same inputs; rebuild with
``--force`` to pick them up.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import docker

from crucible_ray.errors import ImageMissing
from crucible_ray.languages import LanguageSpec

RECIPE_VERSION = 1
DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_CACHE = Path("/var/cache/crucible/debootstrap")
LABEL_INPUTS = "dev.crucible.image.inputs"
LABEL_LANGUAGE = "dev.crucible.image.language"

# Removed from every runtime image: package managers and what only they use.
_STRIP_PATHS = (
    "usr/bin/apt*",
    "usr/bin/dpkg*",
    "usr/lib/apt",
    "usr/lib/dpkg",
    "var/lib/apt",
    "var/lib/dpkg",
    "var/cache/apt",
    "var/cache/debconf",
    "etc/apt",
    "etc/dpkg",
    "usr/bin/pip*",
    "usr/lib/python3/dist-packages/pip",
    "usr/bin/npm",
    "usr/bin/npx",
    "usr/share/nodejs/npm",
    "usr/bin/corepack",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/log/*",
    "usr/sbin/*",
)


def _launcher_bytes(spec: LanguageSpec) -> bytes:
    return resources.files("crucible_ray.images").joinpath("launchers", spec.launcher).read_bytes()


def image_inputs(spec: LanguageSpec) -> dict[str, object]:
    return {
        "recipe": RECIPE_VERSION,
        "suite": DEBIAN_SUITE,
        "packages": sorted(spec.packages),
        "launcher": spec.launcher,
        "launcher_sha256": hashlib.sha256(_launcher_bytes(spec)).hexdigest(),
        "strip": list(_STRIP_PATHS),
    }


def image_tag(spec: LanguageSpec) -> str:
    digest = hashlib.sha256(json.dumps(image_inputs(spec), sort_keys=True).encode()).hexdigest()
    return f"{spec.image_repository}:{digest[:12]}"


@dataclass(frozen=True)
class ImageStatus:
    language: str
    tag: str
    present: bool
    size_mb: float | None = None
    created: str | None = None


def list_images(client: docker.APIClient, specs: list[LanguageSpec]) -> list[ImageStatus]:
    statuses = []
    for spec in specs:
        tag = image_tag(spec)
        try:
            info = client.inspect_image(tag)
        except docker.errors.ImageNotFound:
            statuses.append(ImageStatus(spec.name, tag, present=False))
            continue
        statuses.append(
            ImageStatus(spec.name, tag, True, round(info["Size"] / 1e6, 1), info["Created"][:19])
        )
    return statuses


def require_image(client: docker.APIClient, spec: LanguageSpec) -> str:
    tag = image_tag(spec)
    try:
        client.inspect_image(tag)
    except docker.errors.ImageNotFound:
        raise ImageMissing(
            f"sandbox image {tag} for {spec.name} is not built; run `crucible-ray images build`"
        ) from None
    return tag


def build_image(
    client: docker.APIClient,
    spec: LanguageSpec,
    *,
    force: bool = False,
    mirror: str | None = None,
    log: Callable[[str], None] = print,
) -> str:
    """Build the image for ``spec`` unless an image with the same inputs exists. Returns its tag."""
    tag = image_tag(spec)
    if not force and any(s.present for s in list_images(client, [spec])):
        log(f"{tag}: up to date")
        return tag
    if shutil.which("debootstrap") is None:
        raise ImageMissing("debootstrap is not installed (apt-get install debootstrap)")
    mirror = mirror or os.environ.get("CRUCIBLE_DEBIAN_MIRROR", DEFAULT_MIRROR)
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"crucible-{spec.name}-", dir="/var/tmp") as work:
        rootfs = Path(work) / "rootfs"
        log(f"{tag}: debootstrap {DEBIAN_SUITE} + {' '.join(spec.packages)}")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(spec.packages)}",
                f"--cache-dir={DEBOOTSTRAP_CACHE}",
                DEBIAN_SUITE,
                str(rootfs),
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _finish_rootfs(rootfs, spec)
        archive = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, version = tag.split(":")
        labels = {
            LABEL_INPUTS: json.dumps(image_inputs(spec), sort_keys=True),
            LABEL_LANGUAGE: spec.name,
        }
        changes = [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
        client.import_image_from_file(
            str(archive), repository=repository, tag=version, changes=changes
        )
    log(f"{tag}: built")
    _remove_stale(client, spec, keep=tag, log=log)
    return tag


def _remove_stale(
    client: docker.APIClient, spec: LanguageSpec, keep: str, log: Callable[[str], None]
) -> None:
    """Drop older builds of this language's image (an image still in use is left alone)."""
    for image in client.images(name=spec.image_repository):
        for old in image.get("RepoTags") or []:
            if old != keep:
                try:
                    client.remove_image(old)
                    log(f"{old}: removed (superseded)")
                except docker.errors.APIError:
                    pass


def _finish_rootfs(rootfs: Path, spec: LanguageSpec) -> None:
    launcher_dir = rootfs / "opt" / "crucible"
    launcher_dir.mkdir(parents=True, exist_ok=True)
    (launcher_dir / spec.launcher).write_bytes(_launcher_bytes(spec))
    (launcher_dir / spec.launcher).chmod(0o644)
    (rootfs / "code").mkdir(exist_ok=True)  # mount point of the read-only code directory
    for pattern in _STRIP_PATHS:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    # No setuid/setgid programs: with no-new-privileges they would not elevate anyway.
    subprocess.run(
        [
            "find",
            str(rootfs),
            "-xdev",
            "-perm",
            "/6000",
            "-type",
            "f",
            "-exec",
            "chmod",
            "ug-s",
            "{}",
            "+",
        ],
        check=True,
    )
