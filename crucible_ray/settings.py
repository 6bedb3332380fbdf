"""Settings: the one configuration object of the service, from ``CRUCIBLE_*`` variables.

Safe defaults, and unsafe ones refused: the JWT secret must be long and not a well-known
value. When none is configured, a random one is created on first start in a 0600 file.
Nested settings use ``__``: ``CRUCIBLE_SANDBOX__MEMORY_MB=200``.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.policy import SandboxPolicy

MIN_SECRET_CHARS = 32
WELL_KNOWN_SECRETS = {"secret", "changeme", "change-me", "password", "crucible", "jwt-secret",
                      "your-secret-key", "supersecret", "test", "development"}  # fmt: skip


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRUCIBLE_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)  # fmt: skip

    state_dir: Path = Path("/var/lib/crucible")
    database_url: str | None = Field(None, description="default: SQLite in state_dir")
    jwt_secret: SecretStr | None = Field(None, description="default: a 0600 file in state_dir")
    jwt_issuer: str = "crucible-ray"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(10, ge=1, description="evaluations per user per minute")
    waits_per_user: int = Field(
        8, ge=1, description="concurrent long polls (?wait) per user and ingress replica"
    )
    retention_days: float = Field(30, gt=0, description="results older than this are purged")
    maintenance_every_s: float = Field(60, gt=0, description="purge and reconcile this often")
    reconcile_after_s: float = Field(
        300, gt=0, description="an unfinished record nobody runs ends as an error after this"
    )
    metadata_limit_bytes: int = Field(4096, ge=0)
    max_batch_items: int = Field(1000, ge=1, le=100_000)
    max_body_bytes: int = Field(32 << 20, ge=1024, description="larger bodies get 413")
    request_timeout_s: float = Field(120, gt=0, description="HTTP request timeout at the proxy")
    sandbox: SandboxPolicy = Field(default_factory=SandboxPolicy)
    dispatcher: DispatcherConfig = Field(default_factory=DispatcherConfig)

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'crucible.db'}"

    @cached_property
    def secret(self) -> str:
        """The JWT signing secret: configured, or the generated file (created on first use)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.state_dir / "jwt-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{path} must be readable by its owner only (chmod 600)")
        return check_secret(path.read_text().strip())


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"the JWT secret must have at least {MIN_SECRET_CHARS} characters")
    if secret.lower() in WELL_KNOWN_SECRETS or len(set(secret)) < 8:
        raise ValueError("the JWT secret is a well-known or trivial value; refusing it")
    return secret
