"""Matching SBOMs against an offline advisory database in OSV format (https://ossf.github.io/
osv-schema/): a directory of ``.json`` files, a ``.zip`` of them (OSV's own per-ecosystem
``all.zip``), or one file holding an advisory or a list.

Pure functions: :func:`scan` takes packages and advisories and returns findings. Versions are
ordered by the ecosystem's own rules through real libraries: Debian's by python-debian (epochs,
``~`` before anything, ``+deb12u1``), PyPI's by packaging. Debian advisories name source
packages, so a Debian package is matched by its source name and version.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError
from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion
from packaging.version import Version as PypiVersion

from crucible_ray.images.sbom import Package

SEVERITIES = ("none", "low", "medium", "high", "critical")
UNKNOWN = "unknown"  # ranks as high: an advisory whose severity is unreadable is not waved on
_RANK = {**{name: i for i, name in enumerate(SEVERITIES)}, UNKNOWN: SEVERITIES.index("high")}
_WORDS = {"low": "low", "unimportant": "low", "negligible": "low", "moderate": "medium",
          "medium": "medium", "important": "high", "high": "high",
          "critical": "critical"}  # fmt: skip
_ECOSYSTEMS = {"deb": "Debian", "pypi": "PyPI"}


class AdvisoryError(ValueError):
    """The advisory database cannot be read (names the file)."""


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    severity: str
    fixed: str | None
    summary: str


def rank(severity: str) -> int:
    return _RANK[severity]


def load(path: Path) -> list[dict[str, Any]]:
    """Every advisory under ``path`` (a directory, a .zip, or a .json file)."""
    if path.is_dir():
        return [a for f in sorted(path.rglob("*.json")) for a in _parse(f.name, f.read_bytes())]
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return [a for name in archive.namelist() if name.endswith(".json")
                        for a in _parse(name, archive.read(name))]  # fmt: skip
        except zipfile.BadZipFile:
            raise AdvisoryError(f"{path.name} is not a zip archive") from None
    try:
        return _parse(path.name, path.read_bytes())
    except OSError as exc:
        raise AdvisoryError(f"cannot read {path}: {exc.strerror}") from None


def scan(packages: Iterable[Package], advisories: list[dict[str, Any]], *,
         release: str = "12") -> list[Finding]:  # fmt: skip
    """The advisories that affect ``packages``; ``release``: the Debian release of the image
    (an advisory for ``Debian:11`` does not apply to ``Debian:12``; plain ``Debian`` does)."""
    index: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for advisory in advisories:
        for affected in advisory.get("affected", []):
            package = affected.get("package", {})
            family, _, version = str(package.get("ecosystem", "")).partition(":")
            if family == "Debian" and version and version != release:
                continue
            index.setdefault((family, package.get("name", "")), []).append((advisory, affected))
    findings = []
    for package in packages:
        family = _ECOSYSTEMS[package.ecosystem]
        candidates = [(package.source, package.source_version)]
        if package.source != package.name:  # an advisory that names the binary package
            candidates.append((package.name, package.version))
        seen = set()
        for name, version in candidates:
            for advisory, affected in index.get((family, name), []):
                if advisory["id"] in seen or not affects(affected, version, family):
                    continue
                seen.add(advisory["id"])
                findings.append(Finding(package.name, package.version, advisory["id"],
                                        severity(advisory, affected), _fixed(affected),
                                        str(advisory.get("summary", ""))[:200]))  # fmt: skip
    return sorted(findings, key=lambda f: (-rank(f.severity), f.package, f.advisory))


def affects(affected: dict[str, Any], version: str, family: str) -> bool:
    """Whether ``version`` is affected: listed in ``versions``, or inside an ``ECOSYSTEM``
    range (OSV's evaluation: sorted events, ``introduced`` opens, ``fixed`` and
    ``last_affected`` close). A version the ecosystem cannot parse is not matched."""
    parse = DebianVersion if family == "Debian" else PypiVersion
    if version in affected.get("versions", []):
        return True
    try:
        mine = parse(version)
    except (ValueError, InvalidVersion):
        return False
    for span in affected.get("ranges", []):
        if span.get("type") != "ECOSYSTEM":
            continue  # GIT and SEMVER ranges name commits and semver, not package versions
        try:
            events = [_event(e, parse) for e in span.get("events", [])]
        except (ValueError, InvalidVersion):
            continue
        # "introduced: 0" comes before every version; at one version, opening before closing.
        inside = any(kind == "introduced" and at is None for kind, at in events)
        dated = sorted(((k, at) for k, at in events if at is not None),
                       key=lambda event: (event[1], event[0] != "introduced"))  # fmt: skip
        for kind, at in dated:
            if kind == "introduced" and mine >= at:
                inside = True
            elif (kind == "fixed" and mine >= at) or (kind == "last_affected" and mine > at):
                inside = False
        if inside:
            return True
    return False


def severity(advisory: dict[str, Any], affected: dict[str, Any]) -> str:
    """The highest severity the advisory states: CVSS vectors (v2, v3, v4) scored by the
    ``cvss`` library, then the database's or the ecosystem's word for it."""
    found = []
    for entry in [*advisory.get("severity", []), *affected.get("severity", [])]:
        score = _cvss_score(entry.get("type", ""), entry.get("score", ""))
        if score is not None:
            found.append(_rating(score))
    words = [advisory.get("database_specific", {}).get("severity"),
             (affected.get("ecosystem_specific") or {}).get("urgency"),
             (affected.get("database_specific") or {}).get("severity")]  # fmt: skip
    found += [_WORDS[w.lower()] for w in words if isinstance(w, str) and w.lower() in _WORDS]
    return max(found, key=rank) if found else UNKNOWN


def _event(event: dict[str, str], parse: type) -> tuple[str, Any]:
    """An OSV range event as (kind, version); None for the "0" that opens every range."""
    kinds = [k for k in ("introduced", "fixed", "last_affected") if k in event]
    if not kinds:
        return "limit", None  # limits bound GIT ranges' searches; they affect nothing here
    value = event[kinds[0]]
    return kinds[0], None if (kinds[0] == "introduced" and value == "0") else parse(value)


def _fixed(affected: dict[str, Any]) -> str | None:
    fixes = [e["fixed"] for r in affected.get("ranges", []) for e in r.get("events", [])
             if "fixed" in e]  # fmt: skip
    return fixes[-1] if fixes else None


def _cvss_score(kind: str, vector: str) -> float | None:
    scorer = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}.get(kind)
    if scorer is None:
        return None
    try:
        return float(scorer(vector).base_score)
    except (CVSSError, ValueError, TypeError, KeyError):
        return None


def _rating(score: float) -> str:
    if score == 0:
        return "none"
    return "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"


def _parse(name: str, data: bytes) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise AdvisoryError(f"{name} is not JSON") from None
    entries = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries):
        raise AdvisoryError(f"{name}: an OSV advisory is an object with an id")
    return entries
