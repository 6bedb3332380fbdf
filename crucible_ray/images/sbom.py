"""CycloneDX SBOMs: what is in each sandbox image, and in the service's Python environment.

An image's SBOM is made at build time from the image's own package database (``dpkg``'s
``status`` file, read with python-debian, and its file lists), read before the build strips it
and filtered after: a package whose every file (documentation aside) the build removed is not
listed but named as stripped; one it removed in part (apt, dpkg: their programs go, their
libraries stay) is listed with how many of its files went. Plus the files crucible
itself adds (the launchers, the build steps' outputs under ``/opt/crucible``) with their
SHA-256, and any Python distribution installed outside Debian's packages. It is written into the
image (:data:`SBOM_FILE`, so the image's digest covers it) and beside it (``images.records``),
where ``images list``, ``images scan`` and the signature use it.

Debian advisories name *source* packages, so every binary package's source name and version
go into its package URL (``upstream=``) and properties: the scanner matches on them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from debian.deb822 import Deb822
from packageurl import PackageURL

from crucible_ray._version import __version__
from crucible_ray.errors import ImageMissing

SBOM_FILE = "opt/crucible/sbom.cdx.json"  # in every image
SBOM_RECORD = "sbom.cdx.json"  # the copy in the image's record, beside it
DPKG_STATUS = "var/lib/dpkg/status"
CRUCIBLE_FILES = "opt/crucible"
SOURCE_PROPERTY = "crucible:deb:source"
SOURCE_VERSION_PROPERTY = "crucible:deb:source_version"
STRIPPED_PROPERTY = "crucible:deb:files_removed_by_build"  # partly stripped (apt: its binaries)
# Not what decides whether a package is in the image: the build strips these from every one.
_DOCUMENTATION = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/",
                  "usr/share/lintian/")  # fmt: skip


@dataclass(frozen=True)
class Package:
    """One entry of an SBOM, as the scanner and ``images list`` read it back."""

    ecosystem: str  # "deb" or "pypi"
    name: str
    version: str
    source: str  # the source package (Debian); the name itself otherwise
    source_version: str


@dataclass(frozen=True)
class DpkgEntry:
    """An installed Debian package, read before the build strips the package database."""

    name: str
    version: str
    arch: str
    source: str
    source_version: str
    files: tuple[str, ...]  # the files (not directories) it installed, relative to the root


def read_dpkg(rootfs: Path) -> list[DpkgEntry]:
    """The installed packages of ``rootfs`` with their files, from dpkg's own database."""
    status = rootfs / DPKG_STATUS
    if not status.is_file():
        raise ImageMissing(f"no package database in {rootfs.parent.name}: cannot write its SBOM")
    entries = []
    with status.open(encoding="utf-8") as f:
        for entry in Deb822.iter_paragraphs(f):
            if entry.get("Status", "").split()[-1:] != ["installed"]:
                continue  # removed, or only configuration files left
            name, version, arch = entry["Package"], entry["Version"], entry["Architecture"]
            source, _, source_version = entry.get("Source", name).partition(" ")
            entries.append(DpkgEntry(name, version, arch, source,
                                     source_version.strip("()") or version,
                                     _files(rootfs, name, arch)))  # fmt: skip
    return entries


def image_sbom(rootfs: Path, entries: list[DpkgEntry], *, name: str, version: str,
               inputs: dict[str, object]) -> str:  # fmt: skip
    """The CycloneDX 1.6 JSON SBOM of the finished root ``rootfs``: the packages of
    ``entries`` (read before stripping) that still have a file in it, crucible's files, and any
    Python distribution installed outside Debian's packages."""
    kept, stripped = {}, []
    for entry in entries:
        files = [f for f in entry.files if not f.startswith(_DOCUMENTATION)]
        left = sum(os.path.lexists(rootfs / f) for f in files)
        if files and not left:
            stripped.append(entry.name)  # every file of it removed: not in the image
        else:
            kept[entry.name] = (entry, len(files) - left)
    components = [*_deb_components(list(kept.values()), _distro(rootfs)),
                  *_python_components(rootfs), *_crucible_files(rootfs)]  # fmt: skip
    recipe = Property(name="crucible:image:inputs", value=json.dumps(inputs, sort_keys=True))
    image = Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=version,
        bom_ref=f"image:{name}:{version}",
        properties=[recipe],
    )
    bom = Bom(components=components, metadata=BomMetaData(component=image))
    bom.register_dependency(image, components)  # the image holds every one of them
    if stripped:  # installed, then removed whole by the build: not in the image
        bom.metadata.properties.add(
            Property(name="crucible:image:stripped_packages", value=" ".join(stripped))
        )
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="crucible-ray", version=__version__)
    )
    return JsonV1Dot6(bom).output_as_string(indent=1)


def write_image_sbom(rootfs: Path, entries: list[DpkgEntry], *, name: str, version: str,
                     inputs: dict[str, object]) -> Path:  # fmt: skip
    target = rootfs / SBOM_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    # The crucible files are hashed as they are now: the SBOM itself is not one of them.
    target.unlink(missing_ok=True)
    text = image_sbom(rootfs, entries, name=name, version=version, inputs=inputs)
    target.write_text(text + "\n")
    target.chmod(0o644)
    return target


def service_sbom(python: str = sys.executable) -> str:
    """The CycloneDX SBOM of the Python environment ``python`` runs in, by cyclonedx-bom."""
    made = subprocess.run(
        [python, "-m", "cyclonedx_py", "environment", "--output-format", "JSON",
         "--spec-version", "1.6", "--output-file", "-", python],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"cyclonedx-py failed: {made.stderr.strip()[-300:]}")
    return made.stdout


def packages(sbom_text: str) -> list[Package]:
    """The Debian and Python packages an SBOM lists (files and the image itself left out)."""
    found = []
    for component in json.loads(sbom_text).get("components", []):
        purl = component.get("purl")
        if not purl:
            continue
        parsed = PackageURL.from_string(purl)
        if parsed.type not in ("deb", "pypi") or not parsed.version:
            continue
        props = {p["name"]: p.get("value", "") for p in component.get("properties", [])}
        found.append(Package(
            ecosystem=parsed.type,
            name=parsed.name,
            version=parsed.version,
            source=props.get(SOURCE_PROPERTY, parsed.name),
            source_version=props.get(SOURCE_VERSION_PROPERTY, parsed.version),
        ))  # fmt: skip
    return found


def _distro(rootfs: Path) -> str:
    fields = {}
    for line in (rootfs / "etc" / "os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip('"')
    return f"{fields.get('ID', 'debian')}-{fields.get('VERSION_ID', 'unknown')}"


def _files(rootfs: Path, name: str, arch: str) -> tuple[str, ...]:
    info = rootfs / "var" / "lib" / "dpkg" / "info"
    listing = next((p for p in (info / f"{name}:{arch}.list", info / f"{name}.list")
                    if p.is_file()), None)  # fmt: skip
    if listing is None:
        return ()
    paths = (line.lstrip("/") for line in listing.read_text(errors="replace").splitlines())
    return tuple(p for p in paths if p and not (rootfs / p).is_dir())


def _deb_components(entries: list[tuple[DpkgEntry, int]], distro: str) -> list[Component]:
    """``entries``: each package with how many of its files the build removed."""
    components = []
    for e, removed in entries:
        qualifiers = {"arch": e.arch, "distro": distro}
        if (e.source, e.source_version) != (e.name, e.version):
            qualifiers["upstream"] = f"{e.source}@{e.source_version}"
        purl = PackageURL(type="deb", namespace=distro.split("-")[0], name=e.name,
                          version=e.version, qualifiers=qualifiers)  # fmt: skip
        components.append(Component(
            type=ComponentType.LIBRARY if e.name.startswith("lib") else ComponentType.APPLICATION,
            name=e.name,
            version=e.version,
            purl=purl,
            bom_ref=purl.to_string(),
            properties=[Property(name=SOURCE_PROPERTY, value=e.source),
                        Property(name=SOURCE_VERSION_PROPERTY, value=e.source_version),
                        *([Property(name=STRIPPED_PROPERTY, value=str(removed))]
                          if removed else [])],
        ))  # fmt: skip
    return components


def _python_components(rootfs: Path) -> list[Component]:
    """Distributions installed outside Debian's packages (pip into /usr/local): none today,
    listed if a build step ever adds one."""
    components = []
    for metadata in sorted(rootfs.glob("usr/local/lib/python3*/*-packages/*.dist-info/METADATA")):
        fields = dict(
            line.split(": ", 1) for line in metadata.read_text(errors="replace").splitlines()
            if line.startswith(("Name: ", "Version: "))
        )  # fmt: skip
        if "Name" in fields and "Version" in fields:
            purl = PackageURL(type="pypi", name=fields["Name"].lower(), version=fields["Version"])
            components.append(Component(name=fields["Name"], version=fields["Version"],
                                        purl=purl, bom_ref=purl.to_string()))  # fmt: skip
    return components


def _crucible_files(rootfs: Path) -> list[Component]:
    components = []
    for path in sorted((rootfs / CRUCIBLE_FILES).rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        rel = "/" + path.relative_to(rootfs).as_posix()
        components.append(Component(
            type=ComponentType.FILE, name=rel, bom_ref=f"file:{rel}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        ))  # fmt: skip
    return components
