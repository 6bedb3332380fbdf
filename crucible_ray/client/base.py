"""What Client and AsyncClient share: configuration and the retry budget of one call."""

from __future__ import annotations

from typing import Any

from crucible_ray.client import protocol
from crucible_ray.client.config import ClientConfig
from crucible_ray.client.retry import Retrier


class ClientBase:
    config: ClientConfig

    def _configure(self, url: str | None, token: str | None, config: ClientConfig | None,
                   options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """Set ``self.config``; return the httpx client's arguments."""
        self.config = config or ClientConfig.from_env(url=url, token=token, **options)
        return {"base_url": self.config.url, "headers": protocol.headers(self.config),
                "timeout": self.config.request_timeout_s}  # fmt: skip

    def _retrier(self, deadline_s: float | None = None) -> Retrier:
        c = self.config
        return Retrier(deadline_s or c.deadline_s, c.backoff_base_s, c.backoff_max_s)
