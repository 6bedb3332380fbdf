"""Requests kept sealed at rest while they wait in the durable queue.

An accepted evaluation's request (its code included) must survive the death of any process
until its result is final, so the queue keeps it in the database; this keeps it there
encrypted (AES-256-GCM) and bound to its evaluation's id, so a database dump or backup does
not hold anyone's code, and a sealed request copied onto another row does not open. The row,
and with it the sealed request, is deleted when the result is final.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed request that does not open with this key for this evaluation."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the queue key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> Sealer:
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def seal(self, eval_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond our volumes
        return nonce + self._aead.encrypt(nonce, plaintext, eval_id.encode())

    def open(self, eval_id: str, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], eval_id.encode())
        except InvalidTag:
            raise SealError(f"the queued request of {eval_id} does not open") from None
