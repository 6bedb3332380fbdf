"""Settings: the one configuration object of the service, from ``CRUCIBLE_*`` variables.

Safe defaults, and unsafe ones refused: the JWT secret must be long and not a well-known
value. When none is configured, a random one is created on first start in a 0600 file.
Nested settings use ``__``: ``CRUCIBLE_SANDBOX__MEMORY_MB=200`` sets what every sandbox gets
(the API's checks, the dispatcher and the executors all use that one policy).

Secrets (:data:`SECRET_FIELDS`) never pass through Ray: Ray keeps actor and deployment
arguments in its control store, readable by any holder of the cluster token. Ingress replicas
and the dispatcher get the other fields (:meth:`Settings.public`) and read the secrets
themselves at start (:func:`load_settings`): from their environment (a Kubernetes Secret) or
from 0600 files under ``state_dir/secrets`` that ``deploy()`` writes on a one-machine cluster.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.paths import DEFAULT_STATE_DIR
from crucible_ray.policy import SandboxPolicy
from crucible_ray.store.files import private_dir, write_private

MIN_SECRET_CHARS = 32
QUEUE_KEY_BYTES = 32  # AES-256-GCM (store/sealing.py)
WELL_KNOWN_SECRETS = {"secret", "changeme", "change-me", "password", "crucible", "jwt-secret",
                      "your-secret-key", "supersecret", "test", "development"}  # fmt: skip
ENV_PREFIX = "CRUCIBLE_"
# Never handed to Ray. The private key is the token issuer's (`crucible-ray token`) only.
SECRET_FIELDS = frozenset({"database_url", "jwt_secret", "jwt_private_key", "queue_key"})
# What deploy() writes for replicas and the dispatcher on one machine (not the private key).
SHARED_SECRETS = ("database_url", "jwt_secret", "queue_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="forbid", frozen=True)  # fmt: skip

    state_dir: Path = Field(DEFAULT_STATE_DIR, description="where all state lives")
    database_url: SecretStr | None = Field(None, description="default: SQLite in state_dir")
    jwt_secret: SecretStr | None = Field(
        None, description="HS256; default: a 0600 file in state_dir"
    )
    jwt_private_key: SecretStr | None = Field(
        None, description="Ed25519 private key (PEM) to sign tokens with: the issuer's side only"
    )
    jwt_public_keys: dict[str, Any] | None = Field(
        None,
        description="JWKS of the Ed25519 public keys tokens are verified with, chosen by `kid` "
        "(several for rotation); when set, HS256 tokens are refused",
    )
    queue_key: SecretStr | None = Field(
        None,
        description="base64 of the 32-byte key that seals queued requests at rest (the queue "
        "plane); default: a 0600 file in state_dir",
    )
    jwt_issuer: str = "crucible-ray"
    jwt_audience: str = Field("crucible-ray", min_length=1, description="required `aud` claim")
    jwt_max_ttl_s: int = Field(
        86400, ge=60, description="tokens whose exp - iat is longer are refused"
    )
    docs_enabled: bool = Field(True, description="serve the API documentation at /docs")
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
    execution_plane: Literal["dispatcher", "queue"] = Field(
        "dispatcher", description="queue: durable admission, executors pull (preview: "
        "docs/design/execution-plane.md)")  # fmt: skip
    dispatch_actors: int = Field(2, ge=1, le=64, description="the queue plane's Dispatch actors")

    @model_validator(mode="after")
    def _one_policy(self) -> Settings:
        """One sandbox policy, from ``CRUCIBLE_SANDBOX__*``: the API checks requests against the
        same object the dispatcher hands to every executor and sandbox."""
        dispatcher = self.dispatcher
        if "policy" in dispatcher.model_fields_set and dispatcher.policy != self.sandbox:
            raise ValueError("set the sandbox policy as `sandbox` (CRUCIBLE_SANDBOX__*), not "
                             "under `dispatcher`")  # fmt: skip
        update = {"policy": self.sandbox, "state_dir": dispatcher.state_dir or self.state_dir}
        # frozen model: set once here, at validation, so every reader sees the same policy
        object.__setattr__(self, "dispatcher", dispatcher.model_copy(update=update))
        return self

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("queue_key")
    @classmethod
    def _queue_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_queue_key(value.get_secret_value())
        return value

    @field_validator("jwt_public_keys")
    @classmethod
    def _public_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from crucible_ray.api.auth import public_key_set

            public_key_set(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("jwt_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from crucible_ray.api.auth import load_private_key

            load_private_key(value.get_secret_value())
        return value

    @property
    def db_url(self) -> str:
        """The store's URL (with its password): for opening the store in this process only."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.state_dir / 'crucible.db'}"

    @cached_property
    def secret(self) -> str:
        """The JWT signing secret: configured, or the generated file (created on first use)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = generated_secret(self.state_dir, "jwt-secret", lambda: secrets.token_urlsafe(48))
        return check_secret(path.read_text().strip())

    @cached_property
    def queue_key_bytes(self) -> bytes:
        """The key sealing queued requests: configured, or the generated file (created on
        first use; every process of one machine's service reads the same file)."""
        if self.queue_key is not None:
            return decode_queue_key(self.queue_key.get_secret_value())
        path = generated_secret(self.state_dir, "queue-key", new_queue_key)
        return decode_queue_key(path.read_text().strip())

    def public(self) -> dict[str, Any]:
        """Every field but the secrets: what may be handed to Ray."""
        return self.model_dump(mode="json", exclude=set(SECRET_FIELDS))

    def write_shared_secrets(self) -> set[str]:
        """Write the secrets replicas and the dispatcher need to 0600 files under
        ``state_dir/secrets`` (0700), for them to read on this machine; a secret not set is
        removed. Returns the names of those that changed."""
        directory = private_dir(private_dir(self.state_dir) / "secrets")
        changed = set()
        for name in SHARED_SECRETS:
            value: SecretStr | None = getattr(self, name)
            path = directory / f"{ENV_PREFIX.lower()}{name}"
            if value is None:
                if path.exists():
                    path.unlink()
                    changed.add(name)
            elif write_private(path, value.get_secret_value()):
                changed.add(name)
        return changed


def load_settings(public: dict[str, Any]) -> Settings:
    """The settings of an ingress replica or the dispatcher: the non-secret fields it was given
    through Ray, secrets from its own environment or the secret files under the state dir."""
    state_dir = Path(public.get("state_dir") or Settings.model_fields["state_dir"].default)
    directory = state_dir / "secrets"
    return Settings(**public, _secrets_dir=directory if directory.is_dir() else None)


def generated_secret(state_dir: Path, name: str, make: Callable[[], str]) -> Path:
    """The 0600 file of a secret generated on first use. Written whole under another name,
    then linked into place: a process that reads it never sees it half written, and of two
    processes creating it at once one wins and both read the winner's."""
    path = private_dir(state_dir) / name
    if not path.exists():
        draft = path.with_name(f".{name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} must be readable by its owner only (chmod 600)")
    return path


def new_queue_key() -> str:
    return base64.b64encode(secrets.token_bytes(QUEUE_KEY_BYTES)).decode()


def decode_queue_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("the queue key must be base64") from None
    if len(key) != QUEUE_KEY_BYTES:
        raise ValueError(f"the queue key must be {QUEUE_KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def check_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"the JWT secret must have at least {MIN_SECRET_CHARS} characters")
    if secret.lower() in WELL_KNOWN_SECRETS or len(set(secret)) < 8:
        raise ValueError("the JWT secret is a well-known or trivial value; refusing it")
    return secret
