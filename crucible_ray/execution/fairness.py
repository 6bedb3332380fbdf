"""Fair share of the cluster's slots between users: which queued evaluation runs next.

Pure (no Ray, no I/O), so the dispatcher's choice is unit-tested alone. A free slot goes to the
user with the fewest evaluations running; among those, to the one whose oldest queued
evaluation has waited longest; within a user, first in first out (a retried evaluation goes
first again). So one user's flood of queued work takes turns with everyone else's instead of
holding every slot until it drains: another user's evaluation waits for at most one slot to
free up, not for the flood.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping


class FairQueue:
    """Queued evaluation ids, by user, each with the time it was queued."""

    def __init__(self) -> None:
        self._by_user: dict[str, collections.deque[tuple[str, float]]] = {}
        self._user_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._user_of)

    def __bool__(self) -> bool:
        return bool(self._user_of)

    def __contains__(self, eval_id: object) -> bool:
        return eval_id in self._user_of

    def queued_by(self, user: str) -> int:
        return len(self._by_user.get(user, ()))

    def append(self, user: str, eval_id: str, queued_at: float) -> None:
        self._by_user.setdefault(user, collections.deque()).append((eval_id, queued_at))
        self._user_of[eval_id] = user

    def appendleft(self, user: str, eval_id: str, queued_at: float) -> None:
        """Queue again ahead of the user's others (a retry after its executor was lost)."""
        self._by_user.setdefault(user, collections.deque()).appendleft((eval_id, queued_at))
        self._user_of[eval_id] = user

    def remove(self, eval_id: str) -> None:
        user = self._user_of.pop(eval_id)
        queue = self._by_user[user]
        queue.remove(next(item for item in queue if item[0] == eval_id))
        if not queue:
            del self._by_user[user]

    def pop_next(self, running: Mapping[str, int]) -> str:
        """The id that gets the next free slot, given how many each user has running."""
        user = min(self._by_user, key=lambda u: (running.get(u, 0), self._by_user[u][0][1]))
        return self._pop(user)

    def expired(self, before: float) -> Iterator[str]:
        """Take out every id queued before ``before`` (oldest first within each user)."""
        for user in list(self._by_user):
            while user in self._by_user and self._by_user[user][0][1] < before:
                yield self._pop(user)

    def _pop(self, user: str) -> str:
        queue = self._by_user[user]
        eval_id, _ = queue.popleft()
        if not queue:
            del self._by_user[user]
        del self._user_of[eval_id]
        return eval_id
