"""Image signatures: Ed25519 over an image's identity (backend, language, content digest) and
the SHA-256 of its SBOM, so neither the image nor its SBOM can change without the signature
failing.

The operator owns the signing key (``images keygen``, or their own Ed25519 key in PEM) and
gives executors only public keys: every ``*.pub`` file in the trusted directory is trusted, so a
key is rotated by adding the new one, re-signing (``images sign`` adds a signature, it keeps
the others) and then removing the old one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crucible_ray.errors import ImageUntrusted
from crucible_ray.paths import state_dir

STATEMENT_TYPE = "crucible-ray/image-signature/v1"
TRUSTED_KEYS_ENV = "CRUCIBLE_TRUSTED_IMAGE_KEYS"  # a directory of *.pub files
SIGNING_KEY_ENV = "CRUCIBLE_IMAGE_SIGNING_KEY"  # a PEM private key file


@dataclass(frozen=True)
class ImageIdentity:
    """What a signature vouches for."""

    backend: str  # docker or runsc
    language: str  # the image's name (a language or a variant)
    reference: str  # its tag, or its root image's directory name
    digest: str  # the content: Docker's image ID, or the root image manifest's SHA-256
    sbom_sha256: str

    def statement(self) -> bytes:
        """The signed bytes: canonical JSON, so signer and verifier agree byte for byte."""
        body = {"type": STATEMENT_TYPE, **asdict(self)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def keys_dir(root: Path | None = None) -> Path:
    return (root or state_dir()) / "keys"


def signing_key_path(root: Path | None = None) -> Path:
    return Path(os.environ.get(SIGNING_KEY_ENV) or keys_dir(root) / "image-signing.pem")


def trusted_dir(root: Path | None = None) -> Path:
    return Path(os.environ.get(TRUSTED_KEYS_ENV) or keys_dir(root) / "trusted")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip


def generate_key(private_path: Path, trusted: Path) -> str:
    """A new key pair: the private key at ``private_path`` (0600, never overwritten), its public
    half trusted in ``trusted``. Returns the key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return trust_key(key.public_key(), trusted)


def trust_key(public: Ed25519PublicKey, trusted: Path) -> str:
    trusted.mkdir(mode=0o755, parents=True, exist_ok=True)
    kid = key_id(public)
    (trusted / f"{kid}.pub").write_bytes(public_pem(public))
    return kid


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ImageUntrusted(f"cannot read the image signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImageUntrusted(f"the image signing key {path} is not an Ed25519 key")
    return key


def trusted_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    """Every ``*.pub`` key in ``directory`` by key id. A file that is not an Ed25519 public key
    is an error, not skipped: a trust store that is not what the operator thinks refuses."""
    keys = {}
    for path in sorted(directory.glob("*.pub")) if directory.is_dir() else []:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ImageUntrusted(f"trusted key {path.name} is unreadable: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ImageUntrusted(f"trusted key {path.name} is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def sign(identity: ImageIdentity, key: Ed25519PrivateKey) -> dict[str, str]:
    statement = identity.statement()
    return {
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(statement)).decode(),
        "statement": statement.decode(),  # for people and tools; verify() rebuilds its own
    }


def verify(identity: ImageIdentity, signatures: list[dict[str, str]],
           keys: dict[str, Ed25519PublicKey]) -> str:  # fmt: skip
    """The id of a trusted key whose signature over ``identity`` verifies; ImageUntrusted
    (saying why) when none does."""
    name = f"{identity.backend} image {identity.reference}"
    if not keys:
        raise ImageUntrusted(f"no trusted image signing key is configured; {name} refused")
    if not signatures:
        raise ImageUntrusted(f"{name} is not signed")
    statement = identity.statement()
    known = [s for s in signatures if s.get("key_id") in keys]
    for entry in known:
        try:
            keys[entry["key_id"]].verify(base64.b64decode(entry["signature"]), statement)
            return entry["key_id"]
        except (InvalidSignature, ValueError, KeyError, TypeError):
            continue
    if not known:
        ids = ", ".join(sorted(str(s.get("key_id")) for s in signatures))
        raise ImageUntrusted(f"{name} is signed only by keys that are not trusted ({ids})")
    raise ImageUntrusted(f"the signature of {name} does not verify: the image or its SBOM "
                         "changed after it was signed")  # fmt: skip
