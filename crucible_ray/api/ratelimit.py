"""Per-user rate limit shared by every ingress replica: on the dispatcher plane one small named
Ray actor, on the queue plane a token bucket per user in the store."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from crucible_ray.store import EvalStore
from crucible_ray.store.rate_limits import StoreRateLimits
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


class Limiter(Protocol):
    """The rate limit as the HTTP layer uses it."""

    async def acquire(self, user: str) -> float:
        """0 when allowed (and counted), else the seconds until it would be."""

    async def refund(self, user: str) -> None:
        """Give back what a request the platform refused was charged."""


class ActorLimiter:
    """The dispatcher plane's: the cluster's one RateLimiter actor."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def acquire(self, user: str) -> float:
        return await self.handle.acquire.remote(user)

    async def refund(self, user: str) -> None:
        await self.handle.refund.remote(user)


class StoreLimiter:
    """The queue plane's: a token bucket per user in the store, one statement per request,
    so no process sees every request (``store/rate_limits.py``)."""

    def __init__(self, store: EvalStore, per_minute: int) -> None:
        self.buckets = StoreRateLimits(store, per_minute)

    async def acquire(self, user: str) -> float:
        return await asyncio.to_thread(self.buckets.take, user, time.time())

    async def refund(self, user: str) -> None:
        """Best effort: a store that cannot take the refund now costs the user one token, and
        must not turn the answer being given into another error."""
        with contextlib.suppress(SQLAlchemyError):
            await asyncio.to_thread(self.buckets.give_back, user, time.time())
