"""Build the sandbox images for the Docker backend: the root filesystem of
:mod:`crucible_ray.images.rootfs` (debootstrap, launcher, stripping), ``docker import``-ed.

Tags are content-addressed on the recipe's inputs (:func:`image_inputs`), so an unchanged
image is never rebuilt and a changed launcher always is.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from crucible_ray.errors import ImageMissing
from crucible_ray.images import records
from crucible_ray.images.rootfs import built_rootfs, image_inputs, image_tag
from crucible_ray.languages import LanguageSpec

__all__ = [
    "ImageStatus",
    "build_image",
    "docker_digest",
    "image_inputs",
    "image_tag",
    "list_images",
    "require_image",
]

LABEL_INPUTS = "dev.crucible.image.inputs"
LABEL_LANGUAGE = "dev.crucible.image.language"


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


def image_present(client: docker.APIClient, spec: LanguageSpec) -> bool:
    """Built, with its record (an image without its SBOM cannot be signed or trusted)."""
    has_record = (records.record_dir("docker", spec) / records.SBOM).is_file()
    return has_record and any(s.present for s in list_images(client, [spec]))


def docker_digest(client: docker.APIClient, spec: LanguageSpec) -> str:
    """The image's content digest (its ID), which its signature names."""
    return client.inspect_image(require_image(client, spec))["Id"]


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
    rootfs: Path | None = None,
    log: Callable[[str], None] = print,
) -> str:
    """Build the image for ``spec`` unless an image with the same inputs exists. Returns its tag.
    ``rootfs``: the finished root to import (:func:`built_rootfs`); otherwise one is built."""
    tag = image_tag(spec)
    if not force and image_present(client, spec):
        log(f"{tag}: up to date")
        return tag
    with contextlib.ExitStack() as stack:
        if rootfs is None:
            rootfs = stack.enter_context(built_rootfs(spec, mirror=mirror, log=log))
        work = stack.enter_context(tempfile.TemporaryDirectory(dir="/var/tmp"))
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
        records.save_sbom("docker", spec, rootfs)
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
