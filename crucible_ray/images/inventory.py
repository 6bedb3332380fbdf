"""The images built on this machine, per backend, with their content digests: what ``images
sign|verify|scan`` and doctor walk over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from crucible_ray.errors import ImageMissing
from crucible_ray.images import records, signing
from crucible_ray.images.build import docker_digest
from crucible_ray.images.local import MANIFEST, image_path
from crucible_ray.languages import LanguageSpec


@dataclass(frozen=True)
class Built:
    backend: str
    spec: LanguageSpec
    digest: str


def present(api: docker.APIClient | None, backends: tuple[str, ...],
            specs: list[LanguageSpec]) -> list[Built]:  # fmt: skip
    """The built images of ``specs`` (``api``: the Docker engine, needed for "docker")."""
    found = []
    for spec in specs:
        for backend in backends:
            digest = _digest(api, backend, spec)
            if digest is not None:
                found.append(Built(backend, spec, digest))
    return found


def sign_present(built: list[Built], key_path: Path, log: Callable[[str], None]) -> None:
    """Sign every image in ``built`` that this key has not signed yet."""
    if not key_path.is_file():
        untrusted = [i for i in built if records.check(i.backend, i.spec, i.digest).problem]
        if untrusted:  # signed elsewhere (imported) is fine; built here and unsigned is not
            log(f"{len(untrusted)} images are not signed by a trusted key and there is no "
                f"signing key at {key_path} (`crucible-ray images keygen`, or import signed "
                "ones); executors refuse them")  # fmt: skip
        return
    kid = signing.key_id(signing.load_private_key(key_path).public_key())
    for image in built:
        trust = records.check(image.backend, image.spec, image.digest)
        if trust.signed_by == kid:
            continue
        records.sign_image(image.backend, image.spec, image.digest, key_path)
        log(f"{records.reference(image.backend, image.spec)} ({image.backend}): signed by {kid}")


def ensure_local_key(log: Callable[[str], None]) -> None:
    """The embedded default: a machine with neither a signing key nor a trusted key gets a new
    pair, so that what it builds it can run. A cluster's operator brings their own (and gives
    executors only the public half)."""
    key_path, trusted = signing.signing_key_path(), signing.trusted_dir()
    if key_path.exists() or signing.trusted_keys(trusted):
        return
    kid = signing.generate_key(key_path, trusted)
    log(f"image signing key {kid} created at {key_path} (trusted: {trusted})")


def _digest(api: docker.APIClient | None, backend: str, spec: LanguageSpec) -> str | None:
    if backend == "runsc":
        if not (image_path(spec) / MANIFEST).is_file():
            return None
        return records.runsc_digest(spec)
    if api is None:
        raise ValueError("the docker backend's images need the engine")
    try:
        return docker_digest(api, spec)
    except ImageMissing:
        return None
