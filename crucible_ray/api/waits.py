"""A per-user bound on concurrent long polls (``?wait``).

Each long poll holds one of the replica's few request slots for up to a minute, so without a
bound one user with many connections could take them all and leave nobody else a slot. The
bound is per ingress replica (an in-process count: no extra call per request); with R replicas
a user holds at most R times it. Over the bound the request is refused at once with 429 and
the reason code ``too_many_waits``, before anything is recorded or charged.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from crucible_ray.api.admission import too_many
from crucible_ray.reasons import Reason

TOO_MANY_WAITS = Reason.TOO_MANY_WAITS.value
RETRY_AFTER_S = 1.0


class LongPolls:
    """Counts each user's long polls in progress on this replica (its event loop only)."""

    def __init__(self) -> None:
        self._held: Counter[str] = Counter()

    def held(self, user: str) -> int:
        return self._held[user]

    @contextlib.contextmanager
    def hold(self, user: str, limit: int) -> Iterator[None]:
        if self._held[user] >= limit:
            raise too_many(
                f"at most {limit} waiting requests per user at once", RETRY_AFTER_S, TOO_MANY_WAITS
            )
        self._held[user] += 1
        try:
            yield
        finally:
            self._held[user] -= 1
            if self._held[user] <= 0:
                del self._held[user]  # bounded by the users waiting now, not all users seen


long_polls = LongPolls()
