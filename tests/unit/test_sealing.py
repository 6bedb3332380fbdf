"""Sealed queued requests: they open only with their key, for their own evaluation."""

from __future__ import annotations

import pytest

from crucible_ray.store.sealing import Sealer, SealError


def test_a_sealed_request_opens_only_for_its_evaluation_and_key():
    sealer = Sealer.generate()
    sealed = sealer.seal("e1", b"print(1)")
    assert b"print(1)" not in sealed and sealer.open("e1", sealed) == b"print(1)"
    assert sealer.seal("e1", b"print(1)") != sealed  # a fresh nonce each time
    with pytest.raises(SealError):
        sealer.open("e2", sealed)  # copied onto another row
    with pytest.raises(SealError):
        Sealer.generate().open("e1", sealed)  # another key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.open("e1", tampered)


def test_keys_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")
