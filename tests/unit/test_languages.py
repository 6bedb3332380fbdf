"""Per-language environment and heap sizing, and which image a request gets (pure logic)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crucible_ray.api.idempotency import request_digest
from crucible_ray.api.schemas import BatchSubmission, EvalSubmission
from crucible_ray.errors import UnsupportedLanguage
from crucible_ray.languages import HEAP_SHARE, IMAGES, LANGUAGES, get_image
from crucible_ray.models import EvalRequest
from crucible_ray.policy import SandboxPolicy


def test_runtimes_heaps_follow_the_sandbox_memory_limit():
    js, go = LANGUAGES["javascript"], LANGUAGES["go"]
    assert js.environment(100)["NODE_OPTIONS"] == "--max-old-space-size=50"
    assert js.environment(1000)["NODE_OPTIONS"] == "--max-old-space-size=500"
    assert go.environment(512)["GOMEMLIMIT"] == f"{int(512 * HEAP_SHARE)}MiB"
    assert js.environment(32)["NODE_OPTIONS"] == "--max-old-space-size=16"  # a floor


def test_the_environment_keeps_the_language_variables_and_adds_nothing_of_the_host():
    python = LANGUAGES["python"]
    assert python.environment(100) == python.env
    go = LANGUAGES["go"].environment(512)
    assert go["GOPROXY"] == "off" and go["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert set(go) == set(LANGUAGES["go"].env) | {"GOMEMLIMIT"}


def test_a_runtime_stopping_at_its_heap_limit_counts_as_out_of_memory():
    js = LANGUAGES["javascript"]
    fatal = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
    assert js.ran_out_of_heap(134, fatal)
    assert not js.ran_out_of_heap(0, fatal)  # a program that printed it and went on
    assert not js.ran_out_of_heap(1, "TypeError: x is not a function\n")
    assert not js.ran_out_of_heap(None, fatal)  # timed out: not an exit of its own
    assert not LANGUAGES["python"].ran_out_of_heap(1, fatal)  # python has no such marker


def test_an_image_is_a_language_default_or_one_of_its_variants():
    assert get_image("python") is get_image("python", "python") is LANGUAGES["python"]
    science = get_image("python", "python-science")
    assert (science.name, science.language, science.is_default) == ("python-science", "python",
                                                                     False)  # fmt: skip
    assert "python3-numpy" in science.packages and science.launcher == "launch.py"
    assert science.command[-1] == "/usr/lib/python3/dist-packages"  # put on sys.path
    for language, image in (("javascript", "python-science"), ("python", "nope")):
        with pytest.raises(UnsupportedLanguage, match="unknown image") as raised:
            get_image(language, image)
        assert raised.value.field == "image"
    with pytest.raises(UnsupportedLanguage) as raised:
        get_image("cobol")
    assert raised.value.field == "language"
    assert set(LANGUAGES) < set(IMAGES) and all(s.is_default for s in LANGUAGES.values())


def test_requests_name_an_image_of_their_language():
    assert EvalSubmission(code="1", image="python-science").image_name == "python-science"
    assert EvalSubmission(code="1").image_name == "python"
    with pytest.raises(ValidationError, match="unknown image 'python-science' for go"):
        EvalSubmission(code="1", language="go", image="python-science")
    spec, policy, _ = SandboxPolicy().resolve(EvalRequest(code="1", image="python-science"))
    assert (spec.name, policy.memory_mb) == ("python-science", 512)
    with pytest.raises(UnsupportedLanguage):
        SandboxPolicy().resolve(EvalRequest(code="1", language="java", image="python-science"))


def test_a_request_naming_its_default_image_is_the_same_request():
    plain, spelled = (BatchSubmission(items=[EvalSubmission(code="1", **extra)])
                      for extra in ({}, {"image": "python"}))  # fmt: skip
    science = BatchSubmission(items=[EvalSubmission(code="1", image="python-science")])
    assert request_digest(plain) == request_digest(spelled) != request_digest(science)
    assert "image" not in plain.items[0].canonical()  # as digested before images existed
