"""Per-user rate limit shared by every ingress replica: one small named Ray actor."""

from __future__ import annotations

import collections
import math
import time
from typing import Any

from crucible_ray.topology import control_plane_singleton

LIMITER_NAME = "crucible-ratelimiter"
WINDOW_S = 60.0


class RateLimiter:
    """Sliding one-minute window per user."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, collections.deque[float]] = {}

    async def acquire(self, user: str, cost: int = 1) -> float:
        """0 when allowed (and counted), else the seconds until it would be."""
        now = time.monotonic()
        hits = self._hits.setdefault(user, collections.deque())
        while hits and now - hits[0] >= WINDOW_S:
            hits.popleft()
        if len(hits) + cost > self.per_minute:
            oldest = hits[0] if hits else now
            return float(max(1, math.ceil(WINDOW_S - (now - oldest))))
        hits.extend([now] * cost)
        return 0.0

    async def refund(self, user: str, cost: int = 1) -> None:
        """Give back what a refused request was charged: an evaluation the platform could not
        admit (overloaded, unavailable) does not count against the user's limit."""
        hits = self._hits.get(user)
        for _ in range(min(cost, len(hits or ()))):
            hits.pop()  # type: ignore[union-attr]


def get_limiter(per_minute: int) -> Any:
    """The cluster's rate limiter actor (a Ray actor handle)."""
    return control_plane_singleton(RateLimiter, LIMITER_NAME, per_minute)
