"""ExecutionClient: submit evaluations to the cluster's dispatcher from any Ray driver."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray

from crucible_ray.errors import InvalidRequest, NoExecutors, Overloaded
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.dispatcher import Dispatcher
from crucible_ray.models import EvalRequest, EvalResult
from crucible_ray.topology import (
    DISPATCHER_NAME,
    NAMESPACE,
    control_plane_singleton,
    wait_until_names_free,
)


def get_dispatcher(config: DispatcherConfig | None = None, *, replace: bool = False) -> Any:
    """The cluster's dispatcher actor, created (detached, off executor nodes) if missing.

    ``replace=True`` stops an existing dispatcher and its executors and starts a new one with
    ``config`` (an existing dispatcher otherwise keeps the configuration it started with).
    """
    if replace:
        stop_dispatcher()
    config_dump = (config or DispatcherConfig()).model_dump()
    return control_plane_singleton(
        Dispatcher, DISPATCHER_NAME, config_dump, max_concurrency=100_000
    )


def stop_dispatcher() -> bool:
    """Stop the dispatcher (and its executors); True if there was one.

    ``ray.kill`` is asynchronous: the dead actor's name stays registered for a moment, and
    ``get_if_exists`` would hand that dead actor to the next ``get_dispatcher``. So this
    returns only once the name is free.
    """
    try:
        handle = ray.get_actor(DISPATCHER_NAME, namespace=NAMESPACE)
    except ValueError:
        return False
    try:
        ray.get(handle.shutdown.remote(), timeout=60)
    except ray.exceptions.RayActorError:
        pass  # already dead (killed a moment ago): nothing left to shut down
    finally:
        ray.kill(handle, no_restart=True)
    # Waits at most 30 s; a name still held after that surfaces as the caller's next error.
    wait_until_names_free((DISPATCHER_NAME,))
    return True


def raise_for_refusal(answer: dict[str, Any]) -> None:
    if answer["accepted"]:
        return
    if answer["reason"] == "overloaded":
        raise Overloaded(answer["message"], retry_after_s=answer["retry_after_s"])
    if answer["reason"] == "invalid":
        raise InvalidRequest(answer["message"], field=answer["field"])
    raise NoExecutors(answer["message"])


class ExecutionClient:
    """Blocking client of the dispatcher (Ray must already be initialised)."""

    def __init__(self, dispatcher: Any | None = None) -> None:
        self.dispatcher = dispatcher or get_dispatcher()

    def submit(self, request: EvalRequest, eval_id: str | None = None, *,
               user: str | None = None) -> str:  # fmt: skip
        """Admit one evaluation; raises Overloaded, InvalidRequest or NoExecutors at once.
        ``user`` names whose it is: slots are shared fairly between users, and the per-user
        admission limit counts it (and the audit log names it)."""
        eval_id = eval_id or uuid.uuid4().hex
        context = {"user": user} if user else None
        answer = self.dispatcher.submit.remote(eval_id, request.model_dump(), context)
        raise_for_refusal(ray.get(answer))
        return eval_id

    def result(self, eval_id: str, timeout_s: float = 0.0) -> EvalResult | None:
        """The result (final, or the current state if ``timeout_s`` passes first)."""
        answer = ray.get(self.dispatcher.wait.remote(eval_id, timeout_s), timeout=timeout_s + 30)
        return None if answer is None else EvalResult.model_validate(answer)

    def run(
        self, request: EvalRequest, eval_id: str | None = None, timeout_s: float = 600.0
    ) -> EvalResult:
        eval_id = self.submit(request, eval_id)
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.result(eval_id, timeout_s=min(60.0, deadline - time.monotonic()))
            assert result is not None
            if result.status.is_final or time.monotonic() >= deadline:
                return result

    def cancel(self, eval_id: str) -> dict[str, Any] | None:
        return ray.get(self.dispatcher.cancel.remote(eval_id))

    def stats(self) -> dict[str, Any]:
        return ray.get(self.dispatcher.stats.remote())
