"""Admission, the one entry for single, batch and judged submissions: the plane decides how.

- dispatcher plane (``dispatcher_admission.py``): record, then submit to the Dispatcher actor;
- queue plane (``queue_admission.py``): validate here, then record and queue in one store
  transaction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

from fastapi import Request

from crucible_ray.api.admission import Submission
from crucible_ray.api.deps import Services
from crucible_ray.api.dispatcher_admission import record_then_submit
from crucible_ray.api.plane import QueuePlane
from crucible_ray.api.queue_admission import admit_durably
from crucible_ray.store import NewEvaluation

P = ParamSpec("P")
T = TypeVar("T")


def _runs_to_completion(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Once started, the coroutine runs to its end even when its request is cancelled (Serve
    cancels it when the client disconnects); the caller's answer is lost, its work is not."""

    @functools.wraps(fn)
    async def shielded(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.shield(asyncio.ensure_future(fn(*args, **kwargs)))

    return shielded


@_runs_to_completion
async def accept(
    svc: Services,
    user: str,
    request: Request,
    items: Sequence[tuple[str, Submission]],
    batch_id: str | None,
    digest: str | None = None,
) -> list[NewEvaluation]:
    """The records admitted, in order, or an HTTP refusal. Never left half done: a submission
    cut in the middle would be admitted but forgotten, or recorded but never run."""
    if isinstance(svc.plane, QueuePlane):
        return await admit_durably(svc, svc.plane, user, request, items, batch_id, digest)
    return await record_then_submit(svc, svc.plane, user, request, items, batch_id, digest)
