"""Sandboxes booted ahead of demand, one small pool per language.

A warm sandbox has its runtime booted and its interpreter waiting for code, which takes the
sandbox start (~0.3 s under gVisor) off the evaluation's critical path. Each one still serves a
single evaluation and is replaced as soon as it is taken.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from crucible_ray.errors import CrucibleError
from crucible_ray.sandbox.backend import Sandbox

log = logging.getLogger(__name__)


class WarmPool:
    def __init__(
        self,
        size: int,
        factory: Callable[[], Sandbox],
        destroy: Callable[[Sandbox], None],
        refill: ThreadPoolExecutor,
    ) -> None:
        self.size = size
        self._factory = factory
        self._destroy = destroy
        self._refill = refill
        self._ready: collections.deque[Sandbox] = collections.deque()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self.failures = 0
        self._top_up()

    def take(self) -> Sandbox | None:
        """A ready sandbox, or None when none is ready (the caller then boots one itself)."""
        with self._lock:
            sandbox = self._ready.popleft() if self._ready else None
        self._top_up()
        return sandbox

    @property
    def ready(self) -> int:
        return len(self._ready)

    def _top_up(self) -> None:
        with self._lock:
            missing = self.size - len(self._ready) - self._pending
            if self._closed or missing <= 0:
                return
            self._pending += missing
        for _ in range(missing):
            self._refill.submit(self._prepare_one)

    def _prepare_one(self) -> None:
        try:
            sandbox = self._factory()
        except CrucibleError as exc:
            self.failures += 1
            log.warning("warm sandbox failed to boot: %s", exc)
            with self._lock:
                self._pending -= 1
            return  # the next take() tries again; a broken engine is reported by evaluations
        with self._lock:
            self._pending -= 1
            if not self._closed:
                self._ready.append(sandbox)
                return
        self._destroy(sandbox)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready), collections.deque()
        for sandbox in ready:
            self._destroy(sandbox)
