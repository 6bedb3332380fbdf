"""Per-user rate limits kept in the store: a token bucket per user, taken with one statement.

The queue plane has no process that sees every request, so the limit cannot live in one actor's
memory (the dispatcher plane's ``api/ratelimit.RateLimiter``). Each submission is one
conditional upsert: the bucket refills at ``per_minute / 60`` tokens a second up to
``per_minute``, and the row changes only if it holds enough tokens, so two replicas cannot both
spend the last one. Time is the caller's clock in seconds since the epoch; replicas' clocks
differ by far less than a token's refill time.
"""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement, case, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crucible_ray.store.store import EvalStore
from crucible_ray.store.tables import RateBucket


class StoreRateLimits:
    def __init__(self, store: EvalStore, per_minute: int) -> None:
        self.store = store
        self.capacity = float(per_minute)
        self.per_s = per_minute / 60.0

    def _refilled(self, now: float) -> ColumnElement[float]:
        grown = RateBucket.tokens + (literal(now) - RateBucket.at) * self.per_s
        return case((grown > self.capacity, literal(self.capacity)), else_=grown)

    def take(self, user: str, now: float, cost: int = 1) -> float:
        """0 when taken, else the seconds until ``cost`` tokens will be there."""
        insert = pg_insert if self.store.engine.dialect.name == "postgresql" else sqlite_insert
        refilled = self._refilled(now)
        statement = (
            insert(RateBucket)
            .values(user=user, tokens=self.capacity - cost, at=now)
            .on_conflict_do_update(
                index_elements=[RateBucket.user],
                set_={"tokens": refilled - cost, "at": now},
                where=refilled >= cost,
            )
            .returning(RateBucket.tokens)
        )
        with self.store.begin() as conn:
            if conn.execute(statement).first() is not None:
                return 0.0
            held = conn.execute(select(refilled).where(RateBucket.user == user)).scalar_one()
        return float(max(1, math.ceil(round((cost - held) / self.per_s, 6))))  # whole seconds

    def give_back(self, user: str, now: float, cost: int = 1) -> None:
        """Return tokens a refused request was charged (never above the bucket's size)."""
        refilled = self._refilled(now) + cost
        tokens = case((refilled > self.capacity, literal(self.capacity)), else_=refilled)
        with self.store.begin() as conn:
            conn.execute(
                update(RateBucket).where(RateBucket.user == user).values(tokens=tokens, at=now)
            )
