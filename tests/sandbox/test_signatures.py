"""Conformance: every backend runs only images that a trusted key signed, with their SBOM, and
refuses (fail secure, saying why) an unsigned, altered or foreign-signed one.

Each test works on its own copy of the Python image's record (and, for runsc, of the root
image) under a temporary state root with its own trusted key, so the shared images are never
touched. Real sandboxes under real gVisor."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crucible_ray import EvalRequest, ImageUntrusted, SandboxPolicy, SandboxRunner
from crucible_ray.images import records, signing
from crucible_ray.images.local import MANIFEST, image_path, tree_sha256
from crucible_ray.images.rootfs import image_tag
from crucible_ray.languages import IMAGES
from crucible_ray.sandbox import SandboxBackend
from tests.sandbox.conftest import new_backend

PY = IMAGES["python"]


@dataclass
class Trusted:
    """A private state root holding the Python image's record, signed by its own key."""

    backend: SandboxBackend
    root: Path
    key: Path

    @property
    def record(self) -> Path:
        return records.record_dir(self.backend.name, PY, self.root)

    def sign(self, digest: str | None = None, key: Path | None = None) -> None:
        digest = digest or self.backend.image_digest(PY)
        records.sign_image(self.backend.name, PY, digest, key or self.key, self.root)

    def run(self) -> str:
        policy = SandboxPolicy(backend=self.backend.name)
        with SandboxRunner(policy, backend=self.backend, state_dir=self.root) as runner:
            return runner.run(EvalRequest(code="print('ran')")).stdout


@pytest.fixture
def trusted(checked_backend, request, tmp_path, monkeypatch) -> Iterator[Trusted]:
    monkeypatch.delenv(signing.TRUSTED_KEYS_ENV, raising=False)
    engine = request.getfixturevalue("engine") if checked_backend == "docker" else None
    backend = new_backend(checked_backend, engine)
    root = tmp_path / "state"
    shared = records.record_dir(checked_backend, PY)
    if checked_backend == "runsc":  # the whole root image: it lives in the state root
        image_path(PY, root).parent.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(shared), str(image_path(PY, root))], check=True)
    else:  # the image itself stays in the engine; only its record is copied
        records.record_dir("docker", PY, root).mkdir(parents=True)
        shutil.copy(shared / records.SBOM, records.record_dir("docker", PY, root))
    (records.record_dir(checked_backend, PY, root) / records.SIGNATURES).unlink(missing_ok=True)
    backend.images_root = root
    key = tmp_path / "signing.pem"
    signing.generate_key(key, signing.trusted_dir(root))
    yield Trusted(backend, root, key)
    backend.close()


def test_a_signed_image_runs(trusted):
    trusted.sign()
    assert trusted.run() == "ran\n"


def test_an_unsigned_image_is_refused(trusted):
    with pytest.raises(ImageUntrusted, match="is not signed"):
        trusted.run()


def test_an_altered_sbom_is_refused(trusted):
    trusted.sign()
    sbom = trusted.record / records.SBOM
    text = sbom.read_text()
    sbom.unlink()  # a new file (never an edit through a link to the shared one)
    sbom.write_text(text.replace('"name": "python3"', '"name": "python3-hidden"', 1))
    assert sbom.read_text() != text
    with pytest.raises(ImageUntrusted, match="does not verify"):
        trusted.run()


def test_a_signature_of_other_content_is_refused(trusted):
    """A signature made for another image (another digest) does not carry over to this one:
    what Docker would run under the tag, or what the root image's manifest names, is checked."""
    trusted.sign(digest="sha256:" + "0" * 64)
    with pytest.raises(ImageUntrusted, match="does not verify"):
        trusted.run()


def test_an_image_signed_by_a_key_that_is_not_trusted_is_refused(trusted, tmp_path):
    stranger = tmp_path / "stranger.pem"
    signing.generate_key(stranger, tmp_path / "elsewhere")
    trusted.sign(key=stranger)
    with pytest.raises(ImageUntrusted, match="not trusted"):
        trusted.run()


def test_no_trusted_key_refuses_everything(trusted):
    trusted.sign()
    for path in signing.trusted_dir(trusted.root).glob("*.pub"):
        path.unlink()
    with pytest.raises(ImageUntrusted, match="no trusted image signing key"):
        trusted.run()


def test_an_altered_root_with_a_rewritten_manifest_is_refused(trusted):
    """runsc: an attacker who alters the root and rewrites its manifest to match passes the
    integrity check, but not the signature, which named the old manifest. (Docker: what is
    signed is the image's content ID, not its tag, so another image under the tag fails.)"""
    if trusted.backend.name == "docker":
        api = trusted.backend.engine.api
        assert trusted.backend.image_digest(PY) == api.inspect_image(image_tag(PY))["Id"]
        assert trusted.backend.image_digest(PY).startswith("sha256:")
        return
    trusted.sign()
    image = image_path(PY, trusted.root)
    planted = image / "rootfs" / "opt" / "crucible" / "planted"
    planted.write_text("evil\n")
    manifest = json.loads((image / MANIFEST).read_text())
    manifest["directory"] = tree_sha256(image / "rootfs")
    (image / MANIFEST).unlink()
    (image / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    backend = new_backend("runsc")
    backend.images_root = trusted.root
    policy = SandboxPolicy(backend="runsc")
    runner = SandboxRunner(policy, backend=backend, state_dir=trusted.root)
    runner.backend.rootfs = "directory"  # the tree the manifest now matches
    with runner, pytest.raises(ImageUntrusted, match="does not verify"):
        runner.run(EvalRequest(code="print('ran')"))


def test_the_policy_can_turn_it_off_only_explicitly(trusted):
    """The development downgrade: an unsigned image runs only when the policy says so."""
    policy = SandboxPolicy(backend=trusted.backend.name, require_signed_images=False)
    with SandboxRunner(policy, backend=trusted.backend, state_dir=trusted.root) as runner:
        assert runner.run(EvalRequest(code="print('ran')")).stdout == "ran\n"
    assert SandboxPolicy().require_signed_images is True
