"""Test sets by reference and judge batches: the pure parts (content addressing, the request
models, the client's plan of what to send)."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from crucible_ray.api.schemas import JudgeBatchSubmission, JudgeSubmission
from crucible_ray.judge.models import JudgeTest
from crucible_ray.judge.testsets import canonical_tests, content_id

SET_ID = "sha256:" + "ab" * 32


def test_a_test_set_id_is_its_contents_hash_however_it_was_spelled():
    terse = [JudgeTest(stdin="1", expected_stdout="1")]
    spelled_out = [JudgeTest.model_validate({"expected_stdout": "1", "weight": 1.0, "stdin": "1",
                                             "args": [], "id": None})]  # fmt: skip
    canonical = canonical_tests(terse)
    assert canonical == canonical_tests(spelled_out)
    assert content_id(canonical) == "sha256:" + hashlib.sha256(canonical).hexdigest()
    other = canonical_tests([JudgeTest(stdin="1", expected_stdout="2")])
    assert content_id(other) != content_id(canonical)


@pytest.mark.parametrize(
    "fields",
    [{}, {"tests": [{"expected_stdout": "1"}], "testset": SET_ID}, {"testset": "sha256:12"}],
)
def test_a_submission_gives_tests_or_names_a_test_set_never_both_or_neither(fields):
    with pytest.raises(ValidationError):
        JudgeSubmission(code="x", **fields)


def test_a_named_test_set_must_be_resolved_before_it_is_run():
    named = JudgeSubmission(code="x", testset=SET_ID)
    with pytest.raises(ValueError, match="resolved"):
        named.request_body()
    inline = JudgeSubmission(code="x", tests=[{"expected_stdout": "1"}], metadata={"k": 1})
    assert set(inline.request_body()) >= {"code", "tests"}
    assert not {"metadata", "testset"} & set(inline.request_body())


def test_a_batch_shares_its_options_and_each_submission_may_change_its_language():
    batch = JudgeBatchSubmission(
        testset=SET_ID, language="python", image="python-science", scoring="fraction",
        submissions=[{"code": "a", "metadata": {"n": 1}}, {"code": "b", "language": "c"}],
    )  # fmt: skip
    first, second = batch.submission(0), batch.submission(1)
    assert (first["code"], first["image"], first["scoring"], first["metadata"]) == (
        "a", "python-science", "fraction", {"n": 1})  # fmt: skip
    assert second["language"] == "c" and "image" not in second  # python's image is not C's
    assert JudgeSubmission.model_validate(second).image_name == "c"
