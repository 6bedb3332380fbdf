"""Each built image's record beside it: its SBOM (``sbom.cdx.json``) and its signatures
(``signatures.json``).

A runsc root image keeps them in its own directory (``<state>/images/<name>-<digest>/``); a
Docker image, which lives in the engine, in ``<state>/images/docker/<name>-<digest>/``. Moving
an image to another node means moving its record with it (``docker save``/``load`` keeps the
image ID the signature names).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from crucible_ray.errors import ImageUntrusted
from crucible_ray.images import signing
from crucible_ray.images.local import MANIFEST, file_sha256, image_path, images_dir
from crucible_ray.images.rootfs import image_digest, image_tag
from crucible_ray.images.sbom import SBOM_FILE, SBOM_RECORD, Package, packages
from crucible_ray.languages import LanguageSpec

SBOM = SBOM_RECORD
SIGNATURES = "signatures.json"
SIGN_HINT = "run `crucible-ray images sign`"


@dataclass(frozen=True)
class Trust:
    """An image's standing against the trusted keys, as ``images verify`` and doctor show it."""

    backend: str
    language: str
    reference: str
    signed_by: str | None  # the verifying key's id
    problem: str | None  # why it is refused


def record_dir(backend: str, spec: LanguageSpec, root: Path | None = None) -> Path:
    if backend == "runsc":
        return image_path(spec, root)
    return images_dir(root) / "docker" / f"{spec.name}-{image_digest(spec)}"


def reference(backend: str, spec: LanguageSpec) -> str:
    return image_tag(spec) if backend == "docker" else f"{spec.name}-{image_digest(spec)}"


def runsc_digest(spec: LanguageSpec, root: Path | None = None) -> str:
    """A root image's content digest: its manifest names the tree's and the EROFS file's
    digests, which ``verify_image`` checks against the files."""
    return "sha256:" + file_sha256(image_path(spec, root) / MANIFEST)


def save_sbom(backend: str, spec: LanguageSpec, rootfs: Path, root: Path | None = None) -> Path:
    """Copy the SBOM the build wrote into ``rootfs`` into the image's record; a new build's
    record starts without signatures (they named the old content)."""
    source = rootfs / SBOM_FILE
    if not source.is_file():
        raise ImageUntrusted(f"the {spec.name} root has no SBOM ({SBOM_FILE})")
    record = record_dir(backend, spec, root)
    record.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, record / SBOM)
    (record / SIGNATURES).unlink(missing_ok=True)
    return record / SBOM


def sbom_packages(backend: str, spec: LanguageSpec, root: Path | None = None) -> list[Package]:
    path = record_dir(backend, spec, root) / SBOM
    try:
        return packages(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImageUntrusted(f"the SBOM of {reference(backend, spec)} is unreadable: "
                             f"{exc.__class__.__name__}") from None  # fmt: skip


def identity(backend: str, spec: LanguageSpec, digest: str,
             root: Path | None = None) -> signing.ImageIdentity:  # fmt: skip
    sbom = record_dir(backend, spec, root) / SBOM
    try:
        sbom_sha256 = file_sha256(sbom)
    except OSError:
        raise ImageUntrusted(f"{reference(backend, spec)} has no SBOM record; rebuild it "
                             "(`crucible-ray images build --force`)") from None  # fmt: skip
    return signing.ImageIdentity(backend, spec.name, reference(backend, spec), digest,
                                 sbom_sha256)  # fmt: skip


def signatures(backend: str, spec: LanguageSpec, root: Path | None = None) -> list[dict]:
    try:
        listed = json.loads((record_dir(backend, spec, root) / SIGNATURES).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        raise ImageUntrusted(f"the signatures of {reference(backend, spec)} are unreadable; "
                             f"{SIGN_HINT}") from None  # fmt: skip
    return listed if isinstance(listed, list) else []


def sign_image(backend: str, spec: LanguageSpec, digest: str, key_path: Path,
               root: Path | None = None) -> str:  # fmt: skip
    """Add (or renew) this key's signature of the image; other keys' signatures stay."""
    key = signing.load_private_key(key_path)
    entry = signing.sign(identity(backend, spec, digest, root), key)
    kept = [s for s in signatures(backend, spec, root) if s.get("key_id") != entry["key_id"]]
    record = record_dir(backend, spec, root)
    fd, tmp = tempfile.mkstemp(dir=record, prefix=".signatures-")
    with os.fdopen(fd, "w") as f:
        json.dump([*kept, entry], f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, record / SIGNATURES)  # whole or absent
    _forget(backend, spec)
    return entry["key_id"]


def check(backend: str, spec: LanguageSpec, digest: str, root: Path | None = None, *,
          trusted: Path | None = None) -> Trust:  # fmt: skip
    """Verify without raising: what ``images verify`` and doctor report. ``trusted``: the
    trusted keys' directory (default: the one of ``root``)."""
    ref = reference(backend, spec)
    try:
        keys = signing.trusted_keys(trusted or signing.trusted_dir(root))
        kid = signing.verify(identity(backend, spec, digest, root),
                             signatures(backend, spec, root), keys)  # fmt: skip
    except ImageUntrusted as exc:
        return Trust(backend, spec.name, ref, None, str(exc))
    return Trust(backend, spec.name, ref, kid, None)


_verified: set[tuple[str, str, str, str]] = set()
_lock = threading.Lock()


def require_signed(backend: str, spec: LanguageSpec, digest: str,
                   root: Path | None = None) -> None:  # fmt: skip
    """Fail secure: raise ImageUntrusted unless a trusted key signed this exact image and SBOM.
    Checked once per process, content digest and trust directory (the runner asks once per
    image): a revoked key stops being trusted when the executors restart."""
    key = (backend, spec.name, digest, str(signing.trusted_dir(root)))
    with _lock:
        if key in _verified:
            return
    trust = check(backend, spec, digest, root)
    if trust.problem is not None:
        raise ImageUntrusted(trust.problem)
    with _lock:
        _verified.add(key)


def _forget(backend: str, spec: LanguageSpec) -> None:
    with _lock:
        _verified.difference_update({k for k in _verified if k[:2] == (backend, spec.name)})
