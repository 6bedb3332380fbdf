"""When to add or remove executor actors: a pure function of demand and idleness."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScaleDecision:
    add: int = 0
    remove: list[str] = field(default_factory=list)


def decide(*, demand: int, live: int, idle_since: dict[str, float], now: float,
           slots_per_actor: int, min_actors: int, max_actors: int,
           downscale_delay_s: float) -> ScaleDecision:  # fmt: skip
    """Scale to ``ceil(demand / slots)`` actors within ``[min, max]``.

    ``demand`` is running plus queued evaluations; ``live`` counts ready and starting actors;
    ``idle_since`` maps each idle actor to when it became idle. Scaling up is immediate (the
    queue already proves the demand); an actor is removed only after ``downscale_delay_s`` idle.
    """
    desired = min(max(math.ceil(demand / slots_per_actor), min_actors), max_actors)
    if desired > live:
        return ScaleDecision(add=desired - live)
    surplus = live - desired
    idle_long_enough = sorted(
        (since, actor) for actor, since in idle_since.items() if now - since >= downscale_delay_s
    )
    return ScaleDecision(remove=[actor for _, actor in idle_long_enough[:surplus]])
