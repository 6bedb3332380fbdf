"""SubmitWindow: what ``evaluate_many`` submits next. Items are read lazily; the window
shrinks to what the server admits when it answers "overloaded" and grows back one at a time
(additive increase, multiplicative decrease), so a full server is not hammered."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable

from crucible_ray.api.schemas import EvalSubmission


class SubmitWindow:
    def __init__(self, items: Iterable[EvalSubmission], limit: int) -> None:
        self._source = iter(items)
        self._backlog: collections.deque[EvalSubmission] = collections.deque()
        self.limit = self.size = max(1, limit)
        self._exhausted = False

    @property
    def more(self) -> bool:
        return bool(self._backlog) or not self._exhausted

    def next_chunk(self, in_flight: int) -> list[EvalSubmission]:
        """Items to submit now (refills once half the window is free: fewer requests)."""
        free = self.size - in_flight
        if not self.more or (in_flight and free < max(1, self.size // 2)):
            return []
        chunk = [self._backlog.popleft() for _ in range(min(free, len(self._backlog)))]
        wanted = free - len(chunk)
        if wanted > 0 and not self._exhausted:
            fresh = list(itertools.islice(self._source, wanted))
            self._exhausted = len(fresh) < wanted
            chunk += fresh
        return chunk

    def submitted(self, chunk: list[EvalSubmission], admitted: int, in_flight: int) -> None:
        """Report that the first ``admitted`` items of ``chunk`` were accepted."""
        self._backlog.extendleft(reversed(chunk[admitted:]))
        if admitted < len(chunk):
            self.size = max(1, in_flight)
        else:
            self.size = min(self.limit, self.size + 1)
