"""The neutral half of building a sandbox image: a root filesystem directory, built without
Docker. ``debootstrap`` a minimal Debian root with the language's packages, add the launcher,
strip package managers and setuid bits.

Every backend builds from here: ``images.build`` imports the directory into Docker,
``images.local`` turns it into a content-verified root image for ``runsc``. Both are named by
the same content-addressed inputs (:func:`image_inputs`), so an unchanged recipe is never
rebuilt and a changed launcher always is. (The mirror can ship security updates under the same
inputs; rebuild with ``--force`` to pick them up.)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from crucible_ray.errors import ImageMissing
from crucible_ray.images.sbom import DPKG_STATUS, SBOM_FILE, read_dpkg, write_image_sbom
from crucible_ray.languages import JUDGE_DRIVER, LanguageSpec

# 2: the build host's hostname, hosts and resolv.conf no longer copied in; 3: /build, the
# compile stage's mount point (the root is read-only), the language's build steps, and the
# packages' versions (VERSIONS_FILE); 4: the CycloneDX SBOM (sbom.SBOM_FILE)
RECIPE_VERSION = 4
DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_CACHE = Path("/var/cache/crucible/debootstrap")
VERSIONS_FILE = "opt/crucible/versions.json"  # in every image: its packages' versions

# Removed from every runtime image: package managers and what only they use.
STRIP_PATHS = (
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


def launcher_bytes(spec: LanguageSpec) -> bytes:
    return _launcher_file(spec.launcher)


def judge_driver_bytes() -> bytes:
    return _launcher_file(JUDGE_DRIVER)


def _launcher_file(name: str) -> bytes:
    return resources.files("crucible_ray.images").joinpath("launchers", name).read_bytes()


def image_inputs(spec: LanguageSpec) -> dict[str, object]:
    """Everything the image's content is built from."""
    return {
        "recipe": RECIPE_VERSION,
        "suite": DEBIAN_SUITE,
        "packages": sorted(spec.packages),
        "launcher": spec.launcher,
        "launcher_sha256": hashlib.sha256(launcher_bytes(spec)).hexdigest(),
        "judge_driver_sha256": hashlib.sha256(judge_driver_bytes()).hexdigest(),
        "build_steps": list(spec.build_steps),
        "strip": list(STRIP_PATHS),
        **({"purge": sorted(spec.purge_packages)} if spec.purge_packages else {}),
    }


def image_digest(spec: LanguageSpec) -> str:
    """The first 12 hex digits of the inputs' hash: the version part of every image name."""
    inputs = json.dumps(image_inputs(spec), sort_keys=True).encode()
    return hashlib.sha256(inputs).hexdigest()[:12]


def image_tag(spec: LanguageSpec) -> str:
    return f"{spec.image_repository}:{image_digest(spec)}"


@contextlib.contextmanager
def built_rootfs(spec: LanguageSpec, *, mirror: str | None = None,
                 log: Callable[[str], None]) -> Iterator[Path]:  # fmt: skip
    """A finished root filesystem of ``spec`` in a temporary directory, removed after: one
    debootstrap that every backend's image is made from."""
    with tempfile.TemporaryDirectory(prefix=f"crucible-{spec.name}-", dir="/var/tmp") as work:
        rootfs = Path(work) / "rootfs"
        debootstrap_rootfs(spec, rootfs, mirror=mirror, log=log)
        yield rootfs


def debootstrap_rootfs(
    spec: LanguageSpec, rootfs: Path, *, mirror: str | None = None, log: Callable[[str], None]
) -> None:
    """Build the finished root filesystem of ``spec`` into the (new) directory ``rootfs``."""
    if shutil.which("debootstrap") is None:
        raise ImageMissing("debootstrap is not installed (apt-get install debootstrap)")
    mirror = mirror or os.environ.get("CRUCIBLE_DEBIAN_MIRROR", DEFAULT_MIRROR)
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    log(f"{image_tag(spec)}: debootstrap {DEBIAN_SUITE} + {' '.join(spec.packages)}")
    # A cache of its own per image, and one debootstrap of it at a time (both backends build
    # it): two debootstraps fetching the same package into one cache at once fail ("Validating
    # bsdutils"), and every image shares the base packages. The second then finds them cached.
    cache = DEBOOTSTRAP_CACHE / spec.name
    cache.mkdir(exist_ok=True)
    with open(DEBOOTSTRAP_CACHE / f".{spec.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = _debootstrap(spec, rootfs, mirror, cache)
    if done.returncode != 0:  # why: its output, and its log's dpkg errors (a missing package)
        lines = done.stdout.decode(errors="replace").strip().splitlines()[-2:]
        log_file = rootfs / "debootstrap" / "debootstrap.log"
        if log_file.exists():
            lines += [line.strip() for line in log_file.read_text(errors="replace").splitlines()
                      if "depends on" in line or "not installed" in line][-2:]  # fmt: skip
        raise ImageMissing(f"debootstrap failed (exit {done.returncode}): {' | '.join(lines)}")
    if spec.purge_packages:  # before the steps and the versions: as if never installed
        _purge(rootfs, spec)
    for step in spec.build_steps:  # in the image's own root, with its own tools
        log(f"{image_tag(spec)}: {step}")
        env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        ran = subprocess.run([_CHROOT, str(rootfs), "/bin/sh", "-c", step], env=env,
                             capture_output=True, text=True)  # fmt: skip
        if ran.returncode != 0:
            raise ImageMissing(f"build step {step!r} failed: {ran.stderr.strip()[-300:]}")
    _record_versions(rootfs, spec)
    finish_rootfs(rootfs, spec)


def _record_versions(rootfs: Path, spec: LanguageSpec) -> None:
    """The versions of the language's packages, from the image's own package database (which
    is stripped next), into the image: what ``images list`` and ``GET /api/languages`` show."""
    ran = subprocess.run(
        [_CHROOT, str(rootfs), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n",
         *spec.packages],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if ran.returncode != 0:
        raise ImageMissing(f"dpkg-query failed in the {spec.name} root: {ran.stderr.strip()}")
    versions = dict(line.split("\t", 1) for line in ran.stdout.splitlines() if "\t" in line)
    target = rootfs / VERSIONS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n")


_CHROOT = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "chroot"


def _purge(rootfs: Path, spec: LanguageSpec) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    purge = [_CHROOT, str(rootfs), "dpkg", "--purge", "--force-depends", *spec.purge_packages]
    ran = subprocess.run(purge, capture_output=True, text=True, env=env)
    if ran.returncode != 0:
        raise ImageMissing(f"purging packages from the {spec.name} root failed: "
                           f"{ran.stderr.strip()[-300:]}")  # fmt: skip


def _debootstrap(
    spec: LanguageSpec, rootfs: Path, mirror: str, cache: Path
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(spec.packages)}",
            f"--cache-dir={cache}",
            DEBIAN_SUITE,
            str(rootfs),
            mirror,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish_rootfs(rootfs: Path, spec: LanguageSpec) -> None:
    """Install the launcher and strip what a sandbox must not have. Idempotent."""
    launcher_dir = rootfs / "opt" / "crucible"
    launcher_dir.mkdir(parents=True, exist_ok=True)
    (launcher_dir / spec.launcher).write_bytes(launcher_bytes(spec))
    (launcher_dir / spec.launcher).chmod(0o644)
    (launcher_dir / JUDGE_DRIVER).write_bytes(judge_driver_bytes())
    (launcher_dir / JUDGE_DRIVER).chmod(0o644)
    (rootfs / "build").mkdir(mode=0o755, exist_ok=True)  # where /build is mounted
    # debootstrap copies these from the build host: nothing of it may reach a sandbox.
    (rootfs / "etc" / "hostname").write_text("sandbox\n")
    (rootfs / "etc" / "hosts").write_text("127.0.0.1 localhost\n127.0.1.1 sandbox\n")
    (rootfs / "etc" / "resolv.conf").unlink(missing_ok=True)  # no network, no resolver
    # The package database is read before it is stripped, the SBOM written after (an already
    # stripped root, copied out of an image of the same recipe, brings the SBOM it was built with).
    packages = read_dpkg(rootfs) if (rootfs / DPKG_STATUS).is_file() else None
    if packages is None and not (rootfs / SBOM_FILE).is_file():
        raise ImageMissing(f"the {spec.name} root has neither a package database nor an SBOM")
    for pattern in STRIP_PATHS:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    if packages is not None:
        write_image_sbom(rootfs, packages, name=spec.name, version=image_digest(spec),
                         inputs=image_inputs(spec))  # fmt: skip
    # No setuid/setgid programs: with no-new-privileges they would not elevate anyway.
    subprocess.run(
        ["find", str(rootfs), "-xdev", "-perm", "/6000", "-type", "f",
         "-exec", "chmod", "ug-s", "{}", "+"],
        check=True,
    )  # fmt: skip
