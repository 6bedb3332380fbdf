"""Matching packages against OSV advisories: Debian's version ordering, ranges, severities."""

from __future__ import annotations

import json
import zipfile

import pytest

from crucible_ray.images import advisories
from crucible_ray.images.advisories import AdvisoryError, affects, scan, severity
from crucible_ray.images.sbom import Package


def deb(name: str, version: str, source: str | None = None, source_version: str | None = None):
    return Package("deb", name, version, source or name, source_version or version)


def advisory(id_: str, name: str, events: list[dict], *, ecosystem: str = "Debian:12",
             **extra) -> dict:  # fmt: skip
    return {"id": id_, "affected": [{"package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}]}], **extra}  # fmt: skip


def fixed_in(version: str) -> list[dict]:
    return [{"introduced": "0"}, {"fixed": version}]


@pytest.mark.parametrize(
    ("installed", "fixed", "affected"),
    [
        # "u10" after "u6": a string comparison gets this wrong, Debian's ordering does not
        ("3.11.2-6+deb12u6", "3.11.2-6+deb12u10", True),
        ("3.11.2-6+deb12u10", "3.11.2-6+deb12u6", False),
        # "~" sorts before everything, even the end of the string
        ("1.2.3-1~deb12u1", "1.2.3-1", True),
        ("1.2.3-1", "1.2.3-1~deb12u1", False),
        # an epoch outranks any upstream version
        ("1:0.9-1", "2.0-1", False),
        ("2.0-1", "1:0.9-1", True),
        ("3.0.11-1~deb12u2", "3.0.11-1~deb12u2", False),  # the fixed version itself
    ],
)
def test_debian_version_ordering(installed, fixed, affected):
    entry = advisory("DSA-1", "pkg", fixed_in(fixed))["affected"][0]
    assert affects(entry, installed, "Debian") is affected


def test_ranges_open_and_close_in_order():
    events = [{"introduced": "1.0-1"}, {"fixed": "1.5-1"}, {"introduced": "2.0-1"},
              {"last_affected": "2.5-1"}]  # fmt: skip
    entry = advisory("X", "pkg", events)["affected"][0]
    versions = ("0.9-1", "1.0-1", "1.4-9", "1.5-1", "1.9-1", "2.0-1", "2.5-1", "2.5-2")
    outcomes = {v: affects(entry, v, "Debian") for v in versions}
    assert outcomes == {"0.9-1": False, "1.0-1": True, "1.4-9": True, "1.5-1": False,
                        "1.9-1": False, "2.0-1": True, "2.5-1": True, "2.5-2": False}  # fmt: skip


def test_an_explicit_versions_list_and_git_ranges():
    entry = {"package": {"ecosystem": "Debian:12", "name": "p"}, "versions": ["1.0-1"],
             "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}  # fmt: skip
    assert affects(entry, "1.0-1", "Debian")
    assert not affects(entry, "1.0-2", "Debian")  # the GIT range names commits, not versions


def test_debian_advisories_match_the_source_package_of_the_release():
    installed = [deb("libssl3", "3.0.11-1~deb12u2", "openssl"), deb("zlib1g", "1:1.2.13.dfsg-1")]
    db = [
        advisory("DSA-A", "openssl", fixed_in("3.0.13-1~deb12u1")),
        advisory("DSA-B", "openssl", fixed_in("3.0.13-1~deb11u1"), ecosystem="Debian:11"),
        advisory("DSA-C", "openssl", fixed_in("3.0.9-1")),  # already fixed
        advisory("DSA-D", "zlib1g", fixed_in("1:1.3-1"), ecosystem="Debian"),  # binary name
        advisory("PYSEC-E", "openssl", fixed_in("99"), ecosystem="PyPI"),
    ]
    found = scan(installed, db)
    assert {(f.package, f.advisory) for f in found} == {("libssl3", "DSA-A"), ("zlib1g", "DSA-D")}
    assert next(f for f in found if f.advisory == "DSA-A").fixed == "3.0.13-1~deb12u1"


def test_pypi_versions_use_pep_440():
    installed = [Package("pypi", "jinja2", "3.1.10", "jinja2", "3.1.10")]
    db = [advisory("GHSA-1", "jinja2", fixed_in("3.1.9"), ecosystem="PyPI"),
          advisory("GHSA-2", "jinja2", fixed_in("3.1.11"), ecosystem="PyPI")]  # fmt: skip
    assert [f.advisory for f in scan(installed, db)] == ["GHSA-2"]  # 3.1.10 > 3.1.9


def test_severity_from_cvss_words_and_nothing():
    cvss_critical = {
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    }
    assert severity(cvss_critical, {}) == "critical"  # 9.8
    cvss_medium = {
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:N"}]
    }
    assert severity(cvss_medium, {}) == "medium"  # 4.4
    assert severity({"database_specific": {"severity": "MODERATE"}}, {}) == "medium"
    assert severity({}, {"ecosystem_specific": {"urgency": "unimportant"}}) == "low"
    assert severity({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}, {}) == "unknown"
    assert advisories.rank("unknown") == advisories.rank("high")  # not waved through
    both = {**cvss_medium, "database_specific": {"severity": "HIGH"}}
    assert severity(both, {}) == "high"  # the highest stated


def test_findings_are_ordered_by_severity():
    installed = [deb("a", "1"), deb("b", "1")]
    db = [
        advisory("LOW", "a", fixed_in("2"), database_specific={"severity": "LOW"}),
        advisory("CRIT", "b", fixed_in("2"), database_specific={"severity": "CRITICAL"}),
    ]
    assert [f.advisory for f in scan(installed, db)] == ["CRIT", "LOW"]


def test_loading_a_directory_a_zip_and_a_list(tmp_path):
    one, two = advisory("A", "p", fixed_in("2")), advisory("B", "p", fixed_in("2"))
    (tmp_path / "dir" / "deep").mkdir(parents=True)
    (tmp_path / "dir" / "a.json").write_text(json.dumps(one))
    (tmp_path / "dir" / "deep" / "b.json").write_text(json.dumps(two))
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        archive.writestr("A.json", json.dumps(one))
        archive.writestr("B.json", json.dumps(two))
    (tmp_path / "list.json").write_text(json.dumps([one, two]))
    for path in ("dir", "all.zip", "list.json"):
        assert sorted(a["id"] for a in advisories.load(tmp_path / path)) == ["A", "B"]


@pytest.mark.parametrize(("name", "content"), [("bad.json", "{not json"),
                                               ("noid.json", '{"affected": []}'),
                                               ("bad.zip", "not a zip")])  # fmt: skip
def test_an_unreadable_database_is_an_error_naming_the_file(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(AdvisoryError, match=name.split(".")[0]):
        advisories.load(tmp_path / name)
