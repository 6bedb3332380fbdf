"""ClientConfig: where the server is, who you are, and how long a call may take."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientConfig(BaseModel):
    """Safe defaults; ``from_env`` reads ``CRUCIBLE_URL`` and ``CRUCIBLE_TOKEN``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(DEFAULT_URL, description="base URL of the crucible-ray HTTP API")
    token: SecretStr | None = Field(None, description="JWT sent as a bearer token")
    request_timeout_s: float = Field(
        75.0, gt=0, description="one HTTP request; above the server's 60 s long-poll limit"
    )
    deadline_s: float = Field(
        600.0, gt=0, description="one call in total, retries and waiting for a result included"
    )
    backoff_base_s: float = Field(0.5, gt=0, description="first retry delay without Retry-After")
    backoff_max_s: float = Field(30.0, gt=0, description="longest delay between retries")

    @classmethod
    def from_env(cls, **overrides: Any) -> ClientConfig:
        """Arguments win over the environment; ``None`` arguments are ignored."""
        values: dict[str, Any] = {}
        if url := os.environ.get("CRUCIBLE_URL"):
            values["url"] = url
        if token := os.environ.get("CRUCIBLE_TOKEN"):
            values["token"] = token
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
