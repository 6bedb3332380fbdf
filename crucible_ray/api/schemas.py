"""The HTTP request and response bodies (the result body is the shared EvalResult)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from crucible_ray.errors import UnsupportedLanguage
from crucible_ray.judge.models import MAX_TESTS, JudgeOptions, JudgeRequest, JudgeTest
from crucible_ray.judge.testsets import TESTSET_ID_PATTERN
from crucible_ray.languages import LANGUAGES, get_image


class EvalSubmission(BaseModel):
    """One program. Its limits come from the settings (the sandbox policy, the metadata limit)
    and are checked by ``admission.check_limits`` and the dispatcher, never hard-coded here."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1, description="source, at most the policy's code limit")
    language: str = Field(
        "python", description="python, javascript, go, c, cpp, rust or java (GET /api/languages)"
    )
    image: str | None = Field(
        None,
        description="the sandbox image: None for the language's default, or one of its variants"
        " such as python-science (GET /api/languages)",
    )
    stdin: str = Field("", description="given to the program on standard input")
    timeout_s: float | None = Field(
        None, gt=0, description="wall-clock limit, seconds (at most the policy's max_timeout_s)"
    )
    metadata: dict[str, Any] | None = Field(
        None, description="small JSON object (at most metadata_limit_bytes), echoed back"
    )

    kind: ClassVar[str] = "eval"  # what the dispatcher runs it as

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        return known_language(value)

    @field_validator("image")
    @classmethod
    def _image_of_the_language(cls, value: str | None, info: ValidationInfo) -> str | None:
        return image_of_the_language(value, info)

    @property
    def image_name(self) -> str:
        return get_image(self.language, self.image).name

    def request_body(self) -> dict[str, Any]:
        """What the dispatcher runs (the metadata stays with the record)."""
        return self.model_dump(exclude={"metadata"})

    def canonical(self) -> dict[str, Any]:
        """The content, defaults filled in and the default image left out: equal for equal
        submissions however they were spelled (and as before images could be named)."""
        content = self.model_dump(mode="json")
        if self.image_name == self.language:
            del content["image"]
        return content


def known_language(value: str) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"unsupported language; use one of {', '.join(sorted(LANGUAGES))}")
    return value


def image_of_the_language(value: str | None, info: ValidationInfo) -> str | None:
    if value is not None and "language" in info.data:  # else the language was refused
        try:
            get_image(info.data["language"], value)
        except UnsupportedLanguage as exc:
            raise ValueError(str(exc)) from None
    return value


class TestsOrReference(BaseModel):
    """The tests given inline, or named: the id of a test set stored with PUT /api/testsets."""

    tests: list[JudgeTest] | None = Field(None, min_length=1, max_length=MAX_TESTS)
    testset: str | None = Field(
        None, pattern=TESTSET_ID_PATTERN, description="a stored test set's id (instead of tests)"
    )

    @model_validator(mode="after")
    def _tests_or_testset(self) -> TestsOrReference:
        if (self.tests is None) == (self.testset is None):
            raise ValueError("give either tests or testset (a stored test set's id)")
        return self

    @field_validator("language", check_fields=False)
    @classmethod
    def _known_language(cls, value: str) -> str:
        return known_language(value)

    @field_validator("image", check_fields=False)
    @classmethod
    def _image_of_the_language(cls, value: str | None, info: ValidationInfo) -> str | None:
        return image_of_the_language(value, info)


class JudgeSubmission(TestsOrReference, JudgeRequest):
    """One submission and all its tests (the JudgeRequest), judged in one fresh sandbox. Its
    limits come from the settings' sandbox policy, as an evaluation's."""

    metadata: dict[str, Any] | None = Field(
        None, description="small JSON object (at most metadata_limit_bytes), echoed back"
    )

    kind: ClassVar[str] = "judge"

    @property
    def image_name(self) -> str:
        return get_image(self.language, self.image).name

    def request_body(self) -> dict[str, Any]:
        """The JudgeRequest the dispatcher runs: its tests given (resolved if named)."""
        if self.tests is None:
            raise ValueError("a test set named by reference must be resolved first")
        return self.model_dump(exclude={"metadata", "testset"})


class JudgeBatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1)
    language: str | None = Field(None, description="default: the batch's")
    image: str | None = Field(None, description="default: the batch's")
    metadata: dict[str, Any] | None = Field(None, description="echoed back with its result")


class JudgeBatchSubmission(TestsOrReference, JudgeOptions):
    """Many submissions judged on one test set and one set of options (a GRPO group, say):
    each in its own fresh sandbox; byte-identical submissions are judged once."""

    submissions: list[JudgeBatchItem] = Field(
        ..., min_length=1, description="at most max_batch_items (setting, default 1,000)"
    )

    def submission(self, index: int) -> dict[str, Any]:
        """The JudgeSubmission fields of one of its submissions."""
        item = self.submissions[index]
        # the values themselves (validated models: not validated again for each submission)
        shared = {name: getattr(self, name) for name in self.model_fields_set - {"submissions"}}
        own = item.model_dump(exclude_none=True)
        if "language" in own and "image" not in own:
            shared.pop("image", None)  # the batch's image is for the batch's language
        return {**shared, **own}


class JudgeBatchAccepted(BaseModel):
    batch_id: str
    ids: list[str | None] = Field(description="each submission's judging, in order (a duplicate"
                                  " shares the first one's; null: not admitted, the server"
                                  " filled up part-way: send it again)")  # fmt: skip
    unique: int = Field(description="how many distinct submissions are judged")


class Accepted(BaseModel):
    id: str
    status: str = "queued"


class BatchSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EvalSubmission] = Field(
        ..., min_length=1, description="at most max_batch_items (setting, default 1,000)"
    )


class BatchAccepted(BaseModel):
    batch_id: str
    ids: list[str]


class BatchStatus(BaseModel):
    batch_id: str
    total: int
    counts: dict[str, int]
    done: bool


class Health(BaseModel):
    status: str
    executors: int = Field(description="executor actors ready to take work")
    running: int = 0
    queued: int = 0
    admission_limit: int = 0


class Deleted(BaseModel):
    deleted: int


class Problem(BaseModel):
    detail: Any
