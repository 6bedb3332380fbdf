"""The HTTP request and response bodies (the result body is the shared EvalResult)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crucible_ray.languages import LANGUAGES


class EvalSubmission(BaseModel):
    """One program. Size limits that mean 413 (code) are checked by the route, not here."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(..., min_length=1, description="source, at most 100,000 bytes")
    language: str = Field("python", description="python, javascript or go")
    stdin: str = Field("", description="given to the program on standard input")
    timeout_s: float | None = Field(None, gt=0, le=30, description="wall-clock limit, seconds")
    metadata: dict[str, Any] | None = Field(None, description="small JSON object, echoed back")

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unsupported language; use one of {', '.join(sorted(LANGUAGES))}")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > 4096:
            raise ValueError("metadata must serialise to at most 4096 bytes of JSON")
        return value


class Accepted(BaseModel):
    id: str
    status: str = "queued"


class BatchSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EvalSubmission] = Field(..., min_length=1, max_length=1000)


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
