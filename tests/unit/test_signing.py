"""Image signatures: Ed25519 over an image's identity and its SBOM; trust by key files."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crucible_ray.errors import ImageUntrusted
from crucible_ray.images import signing
from crucible_ray.images.signing import ImageIdentity

IMAGE = ImageIdentity("runsc", "python", "python-0123456789ab", "sha256:" + "a" * 64, "b" * 64)


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "signing.pem"
    kid = signing.generate_key(path, tmp_path / "trusted")
    return path, kid, tmp_path / "trusted"


def test_a_signature_verifies_against_the_trusted_key(key):
    path, kid, trusted = key
    entry = signing.sign(IMAGE, signing.load_private_key(path))
    assert entry["key_id"] == kid
    assert signing.verify(IMAGE, [entry], signing.trusted_keys(trusted)) == kid


@pytest.mark.parametrize("field", ["digest", "sbom_sha256", "language", "backend", "reference"])
def test_any_change_to_what_was_signed_fails(key, field):
    path, _, trusted = key
    entry = signing.sign(IMAGE, signing.load_private_key(path))
    changed = dataclasses.replace(IMAGE, **{field: "x" + getattr(IMAGE, field)})
    with pytest.raises(ImageUntrusted, match="does not verify"):
        signing.verify(changed, [entry], signing.trusted_keys(trusted))


def test_the_stored_statement_is_not_what_is_trusted(key):
    """A signature entry whose statement text was edited still verifies only the real image:
    the verifier rebuilds the statement from the image it has."""
    path, _, trusted = key
    entry = signing.sign(IMAGE, signing.load_private_key(path))
    forged = {**entry, "statement": entry["statement"].replace("a" * 64, "c" * 64)}
    assert signing.verify(IMAGE, [forged], signing.trusted_keys(trusted))
    other = dataclasses.replace(IMAGE, digest="sha256:" + "c" * 64)
    with pytest.raises(ImageUntrusted):
        signing.verify(other, [forged], signing.trusted_keys(trusted))


def test_refusals_say_why(key, tmp_path):
    path, _, trusted = key
    keys = signing.trusted_keys(trusted)
    with pytest.raises(ImageUntrusted, match="no trusted image signing key"):
        signing.verify(IMAGE, [], {})
    with pytest.raises(ImageUntrusted, match="is not signed"):
        signing.verify(IMAGE, [], keys)
    stranger = signing.sign(IMAGE, Ed25519PrivateKey.generate())
    with pytest.raises(ImageUntrusted, match="not trusted"):
        signing.verify(IMAGE, [stranger], keys)
    broken = {**signing.sign(IMAGE, signing.load_private_key(path)), "signature": "!!"}
    with pytest.raises(ImageUntrusted, match="does not verify"):
        signing.verify(IMAGE, [broken], keys)


def test_rotation_two_trusted_keys_and_revocation(key, tmp_path):
    path, old, trusted = key
    new_path = tmp_path / "new.pem"
    new = signing.generate_key(new_path, trusted)
    by_old = signing.sign(IMAGE, signing.load_private_key(path))
    by_new = signing.sign(IMAGE, signing.load_private_key(new_path))
    assert signing.verify(IMAGE, [by_old], signing.trusted_keys(trusted)) == old
    assert signing.verify(IMAGE, [by_old, by_new], signing.trusted_keys(trusted)) in {old, new}
    (trusted / f"{old}.pub").unlink()  # the old key revoked
    assert signing.verify(IMAGE, [by_old, by_new], signing.trusted_keys(trusted)) == new
    with pytest.raises(ImageUntrusted, match="not trusted"):
        signing.verify(IMAGE, [by_old], signing.trusted_keys(trusted))


def test_key_files(key, tmp_path):
    path, _, trusted = key
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        signing.generate_key(path, trusted)  # never overwritten
    (trusted / "junk.pub").write_text("not a key")
    with pytest.raises(ImageUntrusted, match=r"junk\.pub"):
        signing.trusted_keys(trusted)  # a broken trust store refuses, it is not skipped
    (tmp_path / "rsa.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(ImageUntrusted, match="cannot read"):
        signing.load_private_key(tmp_path / "rsa.pem")
