"""The HTTP request and response bodies (the result body is the shared EvalResult)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from crucible_ray.errors import UnsupportedLanguage
from crucible_ray.judge.models import JudgeRequest
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


class JudgeSubmission(JudgeRequest):
    """One submission and all its tests (the JudgeRequest), judged in one fresh sandbox. Its
    limits come from the settings' sandbox policy, as an evaluation's."""

    metadata: dict[str, Any] | None = Field(
        None, description="small JSON object (at most metadata_limit_bytes), echoed back"
    )

    kind: ClassVar[str] = "judge"

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
