"""When to retry and how long to wait: exponential backoff with full jitter, Retry-After
honoured, all within one deadline. Pure logic, shared by the sync and async clients."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from crucible_ray.errors import (
    CrucibleError,
    DeadlineExceeded,
    NoExecutors,
    Overloaded,
    ServerError,
    ServiceUnavailable,
)

# Worth retrying: the server may take it later. Everything else is final for this call.
RETRYABLE = (Overloaded, ServiceUnavailable, NoExecutors, ServerError)


@dataclass
class Retrier:
    """One call's retry state. ``pause(error)`` says how long to sleep before the next try, or
    raises: the error itself when it is not retryable, DeadlineExceeded when time is up."""

    deadline_s: float
    base_s: float = 0.5
    max_s: float = 30.0
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)
    rng: random.Random = field(default_factory=random.Random)

    @property
    def remaining_s(self) -> float:
        return self.deadline_s - (time.monotonic() - self.started)

    def pause(self, error: CrucibleError) -> float:
        if not isinstance(error, RETRYABLE):
            raise error
        self.attempts += 1
        delay = self.delay(error)
        if delay >= self.remaining_s:
            raise DeadlineExceeded(
                f"gave up after {self.attempts} attempts in {self.deadline_s:g}s: {error}",
                last_error=error,
            ) from error
        return delay

    def delay(self, error: CrucibleError) -> float:
        backoff = min(self.max_s, self.base_s * 2 ** (self.attempts - 1))
        jittered = self.rng.uniform(0, backoff)  # "full jitter": callers do not move in step
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after:  # the server's hint is a floor; a little jitter spreads the herd
            return retry_after + self.rng.uniform(0, min(1.0, backoff))
        return jittered
