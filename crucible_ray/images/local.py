"""Root images for the ``runsc`` backend: files under the state directory, no Docker.

``<state dir>/images/<language>-<digest>/`` holds ``rootfs/`` (the directory), ``rootfs.erofs``
(the same tree as an uncompressed EROFS image, ``-E noinline_data``: gVisor reads no inline
data), ``manifest.json`` with the digest of each, and the image's record (its SBOM, later its
signatures: ``images.records``). :func:`verify_image` checks
a digest against the files once per process, so an altered or half-written image is refused
before any sandbox boots from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crucible_ray.errors import ImageMissing
from crucible_ray.images.rootfs import debootstrap_rootfs, finish_rootfs, image_digest, image_inputs
from crucible_ray.images.sbom import SBOM_FILE, SBOM_RECORD
from crucible_ray.languages import LanguageSpec
from crucible_ray.paths import state_dir

RootFormat = Literal["erofs", "directory"]
MANIFEST = "manifest.json"
BUILD_HINT = "run `crucible-ray images build --backend runsc`"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RootImage:
    language: str
    path: Path  # the image directory
    format: RootFormat

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def erofs(self) -> Path:
        return self.path / "rootfs.erofs"


def images_dir(root: Path | None = None) -> Path:
    return (root or state_dir()) / "images"


def image_path(spec: LanguageSpec, root: Path | None = None) -> Path:
    return images_dir(root) / f"{spec.name}-{image_digest(spec)}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(root: Path) -> str:
    """One digest over every entry of a tree: path, type, mode, owner, content or link target."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            digest.update(f"{rel}\0{info.st_mode:o}\0{info.st_uid}:{info.st_gid}\0".encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                digest.update(file_sha256(path).encode())
            digest.update(b"\n")
    return digest.hexdigest()


_verified: dict[tuple[Path, RootFormat], RootImage] = {}
_verify_lock = threading.Lock()


def verify_image(spec: LanguageSpec, fmt: RootFormat, root: Path | None = None) -> RootImage:
    """The intact root image of ``spec`` in ``fmt``; ImageMissing when it is not built, half
    built or altered. Hashes the files once per process (startup, not per sandbox)."""
    path = image_path(spec, root)
    with _verify_lock:
        if (path, fmt) in _verified:
            return _verified[(path, fmt)]
        image = RootImage(spec.name, path, fmt)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            raise ImageMissing(f"the {spec.name} root image is not built; {BUILD_HINT}") from None
        want = manifest.get(fmt)
        try:
            have = file_sha256(image.erofs) if fmt == "erofs" else tree_sha256(image.rootfs)
        except OSError:
            have = None
        if want is None or have != want or manifest.get("inputs") != image_inputs(spec):
            raise ImageMissing(
                f"the {spec.name} root image ({fmt}) is missing or altered; {BUILD_HINT}"
            )
        _verified[(path, fmt)] = image
        return image


def local_image_present(spec: LanguageSpec, root: Path | None = None) -> bool:
    """An intact root image of ``spec`` exists (the directory tree checked)."""
    if not (image_path(spec, root) / MANIFEST).exists():
        return False
    try:
        verify_image(spec, "directory", root)
        return True
    except ImageMissing:
        return False


def build_local_image(
    spec: LanguageSpec,
    *,
    force: bool = False,
    mirror: str | None = None,
    from_docker_image: str | None = None,
    root: Path | None = None,
    rootfs: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Build the runsc root image of ``spec`` unless an intact one exists; returns its path.

    ``from_docker_image`` is a developer shortcut only: copy the tree out of a Docker image of
    the same recipe instead of running debootstrap. ``rootfs``: a finished root to copy
    (:func:`built_rootfs`, shared with the Docker image). The EROFS file needs ``mkfs.erofs``
    (erofs-utils); without it only the directory root is built.
    """
    path = image_path(spec, root)
    if not force and local_image_present(spec, root):
        log(f"{path.name}: up to date")
        return path
    given = rootfs
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        rootfs = work / "rootfs"
        if given is not None:  # owners, modes, mtimes and links as they are
            subprocess.run(["cp", "-a", str(given), str(rootfs)], check=True)
        elif from_docker_image:
            _export_docker_image(from_docker_image, rootfs)
            (rootfs / ".dockerenv").unlink(missing_ok=True)
            finish_rootfs(rootfs, spec)
        else:
            debootstrap_rootfs(spec, rootfs, mirror=mirror, log=log)
        manifest: dict[str, object] = {
            "inputs": image_inputs(spec),
            "directory": tree_sha256(rootfs),
        }
        if shutil.which("mkfs.erofs"):
            # Per-file mtimes are kept: a changed mtime would make every .pyc stale.
            subprocess.run(
                ["mkfs.erofs", "--quiet", "-E", "noinline_data", str(work / "rootfs.erofs"),
                 str(rootfs)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            manifest["erofs"] = file_sha256(work / "rootfs.erofs")
        else:
            log(f"{path.name}: mkfs.erofs not found (apt-get install erofs-utils): no EROFS root")
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        shutil.copyfile(rootfs / SBOM_FILE, work / SBOM_RECORD)  # the record: unsigned yet
        if path.exists():
            shutil.rmtree(path)
        work.rename(path)  # complete or absent: the manifest comes with it
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with _verify_lock:
        for key in [key for key in _verified if key[0] == path]:
            del _verified[key]
    log(f"{path.name}: built")
    return path


def _export_docker_image(tag: str, rootfs: Path) -> None:
    rootfs.mkdir()
    container = subprocess.run(
        ["docker", "create", tag, "/bin/true"], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", str(rootfs), "-xf", "-"], stdin=export.stdout, check=True)
        if export.wait() != 0:
            raise ImageMissing(f"docker export of {tag} failed")
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True)
