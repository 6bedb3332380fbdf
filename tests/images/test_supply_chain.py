"""The built images' SBOMs, signatures and advisory scan, through the real CLI on the real
images of both backends (``scripts/bootstrap.sh`` builds and signs them)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner
from crucible_ray.catalog import image_versions
from crucible_ray.images import records, signing
from crucible_ray.images.rootfs import launcher_bytes
from crucible_ray.images.sbom import SBOM_FILE, STRIPPED_PROPERTY
from crucible_ray.languages import IMAGES
from tests.test_cli import cli

BACKENDS = ("docker", "runsc")
PY, SCIENCE = IMAGES["python"], IMAGES["python-science"]
HIGH_CVSS = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5


@pytest.fixture(scope="module")
def built(engine) -> None:
    for backend in BACKENDS:
        for spec in (PY, SCIENCE):
            assert (records.record_dir(backend, spec) / records.SBOM).is_file(), (backend, spec)


def properties(component: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def sbom_of(backend: str, spec) -> dict:
    return json.loads((records.record_dir(backend, spec) / records.SBOM).read_text())


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sbom_is_valid_cyclonedx_and_lists_the_images_packages(built, backend):
    text = (records.record_dir(backend, PY) / records.SBOM).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    sbom = json.loads(text)
    debs = {c["name"]: c for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/")}
    # the versions recorded inside the image by its own dpkg at build time
    assert debs["python3"]["version"] == image_versions(PY)["python3"]
    assert {"libc6", "python3.11", "base-files", "dash"} <= set(debs)
    # the build removes apt's and dpkg's programs (their libraries stay): each says how many
    # of its files went; a package the build left alone says nothing
    assert int(properties(debs["apt"])[STRIPPED_PROPERTY]) > 0
    assert int(properties(debs["dpkg"])[STRIPPED_PROPERTY]) > 0
    assert STRIPPED_PROPERTY not in properties(debs["libc6"])
    libssl = debs.get("libssl3")
    if libssl:  # a binary package names its source for the scanner
        assert "upstream=openssl" in libssl["purl"]
    files = {c["name"]: c for c in sbom["components"] if c["type"] == "file"}
    launcher = files[f"/opt/crucible/{PY.launcher}"]
    assert launcher["hashes"][0]["content"] == hashlib.sha256(launcher_bytes(PY)).hexdigest()
    assert sbom["metadata"]["component"]["version"] == records.reference("runsc", PY).split("-")[-1]


def test_the_sbom_inside_the_sandbox_is_the_record_and_names_what_runs(built):
    """The science image: the numpy a program imports is the version its SBOM lists, and the
    SBOM a sandbox sees is byte for byte the record beside the image."""
    code = (
        "import hashlib, numpy\n"
        f"print(hashlib.sha256(open('/{SBOM_FILE}', 'rb').read()).hexdigest())\n"
        "print(numpy.__version__)\n"
    )
    with SandboxRunner(SandboxPolicy(backend="runsc", memory_mb=512)) as runner:
        result = runner.run(EvalRequest(code=code, image="python-science", timeout_s=30))
    assert result.status == "succeeded", result
    inside, numpy_version = result.stdout.split()
    record = (records.record_dir("runsc", SCIENCE) / records.SBOM).read_bytes()
    assert inside == hashlib.sha256(record).hexdigest()
    listed = {c["name"]: c.get("version") for c in sbom_of("runsc", SCIENCE)["components"]}
    assert listed["python3-numpy"].split(":")[-1].startswith(numpy_version)


def test_images_verify_and_list_report_every_image_signed(built):
    # one image: every image is checked by the conformance suite's fixture already, and a
    # runsc tree's re-hash is the slow part
    out = cli("images", "verify", "--json", "-l", "python")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(out.stdout)
    assert {(r["language"], r["backend"]) for r in rows} == {
        ("python", backend) for backend in BACKENDS}  # fmt: skip
    assert all(r["signed_by"] and r["problem"] is None for r in rows)
    listed = json.loads(cli("images", "list", "--json").stdout)
    python = next(row for row in listed if row["language"] == "python")
    assert set(python["sbom"]) == set(BACKENDS) and python["sbom"]["runsc"]["packages"] > 50


def test_the_scan_finds_the_planted_advisory_with_debians_ordering(built, tmp_path):
    python3 = next(c for c in sbom_of("runsc", PY)["components"] if c["name"] == "python3")
    props = properties(python3)
    source, version = props["crucible:deb:source"], props["crucible:deb:source_version"]

    def planted(id_: str, fixed: str, ecosystem: str = "Debian:12") -> dict:
        return {
            "id": id_,
            "summary": "planted by the test",
            "severity": [{"type": "CVSS_V3", "score": HIGH_CVSS}],
            "affected": [
                {
                    "package": {"ecosystem": ecosystem, "name": source},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                    ],
                }
            ],
        }

    db = [
        planted("TEST-AFFECTED", f"{version}+deb12u10"),  # after the installed version
        planted("TEST-TILDE", f"{version}~deb12u1"),  # "~": before it, so already fixed
        planted("TEST-OTHER-RELEASE", f"{version}+deb12u10", ecosystem="Debian:11"),
    ]
    (tmp_path / "osv").mkdir()
    for entry in db:
        (tmp_path / "osv" / f"{entry['id']}.json").write_text(json.dumps(entry))
    args = ("images", "scan", "--advisories", str(tmp_path / "osv"), "-l", "python",
            "--backend", "runsc", "--json")  # fmt: skip
    out = cli(*args)
    assert out.returncode == 1, out.stdout + out.stderr  # high, at the default threshold
    report = json.loads(out.stdout)
    findings = report["images"]["python (runsc)"]
    same_source = {c["name"] for c in sbom_of("runsc", PY)["components"]
                   if properties(c).get("crucible:deb:source") == source}  # fmt: skip
    assert "python3" in same_source
    # every binary package built from the affected source, and nothing else
    assert {(f["advisory"], f["severity"]) for f in findings} == {("TEST-AFFECTED", "high")}
    assert {f["package"] for f in findings} == same_source
    assert report["advisories"] == 3 and report["failing"] == len(same_source)
    assert cli(*args, "--fail-on", "critical").returncode == 0  # found, below the threshold
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    broken = cli("images", "scan", "--advisories", str(bad), "--json")
    assert broken.returncode == 2 and "broken.json" in json.loads(broken.stdout)["error"]


def test_the_service_sbom_lists_its_python_environment():
    import fastapi
    import ray

    out = cli("images", "sbom", "--service")
    assert out.returncode == 0, out.stderr
    components = {c["name"].lower(): c.get("version") for c in json.loads(out.stdout)["components"]}
    assert components["ray"] == ray.__version__ and components["fastapi"] == fastapi.__version__
    assert "cyclonedx-python-lib" in components


def test_keygen_never_overwrites(tmp_path):
    env = {**os.environ, "CRUCIBLE_STATE_DIR": str(tmp_path)}
    made = cli("images", "keygen", "--json", env=env)
    assert made.returncode == 0, made.stderr
    kid = json.loads(made.stdout)["key_id"]
    assert (tmp_path / "keys" / "trusted" / f"{kid}.pub").is_file()
    assert (tmp_path / "keys" / "image-signing.pem").stat().st_mode & 0o777 == 0o600
    again = cli("images", "keygen", "--json", env=env)
    assert again.returncode == 2 and "not overwritten" in json.loads(again.stdout)["error"]


def test_export_then_import_on_a_node_that_holds_only_the_public_key(built, tmp_path):
    """The build machine exports; a node with only the trusted public key imports, verifies
    and keeps what verifies; a tampered export or a stranger's key is refused, leaving
    nothing behind."""
    exported = tmp_path / "export"
    out = cli("images", "export", "-o", str(exported), "-l", "python")
    assert out.returncode == 0, out.stderr
    archives = sorted(exported.glob("*.tar"))
    assert [a.name.split("-")[0] for a in archives] == ["docker", "runsc"]

    node = tmp_path / "node"
    trusted = node / "keys" / "trusted"
    trusted.mkdir(parents=True)
    for key in signing.trusted_dir().glob("*.pub"):
        shutil.copy(key, trusted)
    env = {**os.environ, "CRUCIBLE_STATE_DIR": str(node)}
    env.pop(signing.TRUSTED_KEYS_ENV, None)
    imported = cli("images", "import", *map(str, archives), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr.count("imported, signed by") == 2
    checked = cli("images", "verify", "-l", "python", "--json", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert all(row["signed_by"] for row in json.loads(checked.stdout))

    runsc_tar = next(a for a in archives if a.name.startswith("runsc-"))
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-C", str(unpacked), "-xf", str(runsc_tar)], check=True)
    sbom = unpacked / "image" / records.SBOM
    sbom.write_text(sbom.read_text().replace('"python3"', '"python3-renamed"', 1))
    tampered = tmp_path / "runsc-tampered.tar"
    subprocess.run(["tar", "-C", str(unpacked), "-cf", str(tampered), "."], check=True)

    stranger = tmp_path / "stranger"
    (stranger / "keys").mkdir(parents=True)
    signing.generate_key(stranger / "keys" / "k.pem", stranger / "keys" / "trusted")
    for state, archive, why in ((node, tampered, "does not verify"),
                                (stranger, runsc_tar, "not trusted")):  # fmt: skip
        before = sorted(p.name for p in (state / "images").glob("*")) if state != stranger else []
        refused = cli("images", "import", str(archive),
                      env={**env, "CRUCIBLE_STATE_DIR": str(state)})  # fmt: skip
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
        after = sorted(p.name for p in (state / "images").glob("*"))
        assert after == before  # nothing half-imported, the good image not replaced
