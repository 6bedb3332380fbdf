"""Test sets by reference: a judge request's tests stored once, content-addressed, so that
thousands of submissions name them (``sha256:...``) instead of resending them.

The id is the SHA-256 of the tests' canonical JSON (fields at their default left out, keys
sorted), so equal tests have one id however their JSON was spelled, an id can never name other
content, and a field added to ``JudgeTest`` later (with a default) changes no existing id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from crucible_ray.judge.models import MAX_TESTS, JudgeTest

TESTSET_ID_PATTERN = r"^sha256:[0-9a-f]{64}$"


def canonical_tests(tests: Sequence[JudgeTest]) -> bytes:
    """The tests as canonical JSON: what the id hashes and the test-data limit measures."""
    content = [test.model_dump(mode="json", exclude_defaults=True) for test in tests]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_id(canonical: bytes) -> str:
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


class TestSet(BaseModel):
    """What ``PUT /api/testsets`` takes: the tests alone (modes, comparison and limits stay
    with each judge request, so one test set serves any of them that fits its tests)."""

    __test__ = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    tests: list[JudgeTest] = Field(..., min_length=1, max_length=MAX_TESTS)


class TestSetInfo(BaseModel):
    """A stored test set, without its tests."""

    __test__ = False
    id: str = Field(description="sha256:<hex>: name it as `testset` in judge requests")
    tests: int = Field(description="how many tests it holds")
    bytes: int = Field(description="its canonical JSON's size (counted against the policy)")
    created_at: datetime
    used_at: datetime = Field(description="last stored or named by a judge request")
    expires_at: datetime = Field(description="erased after this unless used again")
