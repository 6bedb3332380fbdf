"""The queue plane from a Ray driver: start or stop it, and submit, wait for and cancel work.

``QueueClient`` is the queue plane's ``ExecutionClient``: admission is one store transaction
through any Dispatch actor, and results are read from the store, so the client works while any
single process of the plane is down (it moves on to the next Dispatch actor).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import ray

from crucible_ray.execution.client import raise_for_refusal
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.supervisor import DISPATCH_PREFIX, EXECUTOR_PREFIX, Supervisor
from crucible_ray.execution.work import EVAL, JUDGE
from crucible_ray.judge.models import JudgeRequest, JudgeResult
from crucible_ray.models import EvalRequest, EvalResult
from crucible_ray.topology import NAMESPACE, control_plane_singleton, wait_until_names_free

SUPERVISOR_NAME = "crucible-supervisor"
POLL_S = (0.05, 0.5)  # result polls back off from the first to the second


def start_queue_plane(config: DispatcherConfig, dispatchers: int = 2,
                      queue: dict[str, Any] | None = None) -> Any:  # fmt: skip
    """The cluster's supervisor (and through it Dispatch and executor actors), started."""
    supervisor = control_plane_singleton(Supervisor, SUPERVISOR_NAME, config.model_dump(),
                                         dispatchers, queue)  # fmt: skip
    ray.get(supervisor.start.remote())
    return supervisor


def ensure_queue_plane(config: DispatcherConfig, dispatchers: int,
                       secrets_changed: bool = False) -> Any:  # fmt: skip
    """The queue plane as configured: one started otherwise (another config, another number
    of Dispatch actors) or before the store's URL or the sealing key changed is stopped
    first (its executors report their running work), since its Dispatch actors would claim
    from the old store or fail to open what the new key sealed."""
    if queue_plane_running():
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
        wanted = {"config": config.model_dump(), "dispatchers": dispatchers}
        if secrets_changed or ray.get(supervisor.config_dump.remote()) != wanted:
            stop_queue_plane()
    return start_queue_plane(config, dispatchers)


def queue_plane_running() -> bool:
    """Whether this cluster runs the queue plane (its supervisor exists)."""
    try:
        ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return False
    return True


def stop_queue_plane() -> bool:
    """Stop the supervisor, its executors (after their running work is reported) and the
    Dispatch actors; True if there was a supervisor. Returns once their names are free."""
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return False
    with contextlib.suppress(ray.exceptions.RayActorError):
        ray.get(supervisor.shutdown.remote(), timeout=120)
    ray.kill(supervisor, no_restart=True)
    for entry in ray.util.list_named_actors(all_namespaces=True):  # what it left, if it died
        if entry["namespace"] == NAMESPACE and entry["name"].startswith(
            (DISPATCH_PREFIX, EXECUTOR_PREFIX)
        ):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE), no_restart=True)
    wait_until_names_free((SUPERVISOR_NAME, DISPATCH_PREFIX, EXECUTOR_PREFIX))
    return True


class QueueClient:
    """Blocking client of the queue plane for one user (Ray must be initialised)."""

    def __init__(self, user: str, dispatchers: int = 2) -> None:
        self.user = user
        self._names = [f"{DISPATCH_PREFIX}{i}" for i in range(dispatchers)]
        self._index = 0

    def _call(self, method: str, *args: Any, timeout_s: float = 60.0) -> Any:
        """One call to a Dispatch actor; the next one if it is down (they are equivalent)."""
        error: Exception | None = None
        for _ in range(2 * len(self._names)):
            name = self._names[self._index]
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
                return ray.get(getattr(handle, method).remote(*args), timeout=timeout_s)
            except (ValueError, ray.exceptions.RayActorError) as exc:
                error = exc
                self._index = (self._index + 1) % len(self._names)
                time.sleep(0.2)
        raise RuntimeError(f"no Dispatch actor answers: {error}")

    def submit(self, request: EvalRequest, eval_id: str | None = None) -> str:
        """Admit one evaluation; raises Overloaded or InvalidRequest at once. Accepted means
        recorded in the store: it ends with a result whatever single process dies."""
        return self.submit_many([request], [eval_id or uuid.uuid4().hex])[0]

    def submit_many(
        self, requests: list[EvalRequest], eval_ids: list[str] | None = None
    ) -> list[str]:
        """Admit evaluations of this user, all or none, in one transaction."""
        ids = eval_ids or [uuid.uuid4().hex for _ in requests]
        items = [
            (eval_id, EVAL, request.model_dump())
            for eval_id, request in zip(ids, requests, strict=True)
        ]
        raise_for_refusal(self.admit(items))
        return ids

    def result(self, eval_id: str, timeout_s: float = 0.0) -> EvalResult | JudgeResult | None:
        """The record: final, or as it stands once ``timeout_s`` has passed."""
        deadline, pause = time.monotonic() + timeout_s, POLL_S[0]
        while True:
            found = self._call("result", self.user, eval_id)
            if found is None:
                return None
            result = (
                JudgeResult.model_validate(found)
                if "verdict" in found
                else EvalResult.model_validate(found)
            )
            if result.status.is_final or time.monotonic() >= deadline:
                return result
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, POLL_S[1])

    def judge(self, request: JudgeRequest, judge_id: str | None = None) -> str:
        """Admit one judged submission (its tests given in the request); its JudgeResult
        comes from :meth:`result` like an evaluation's."""
        judge_id = judge_id or uuid.uuid4().hex
        raise_for_refusal(self.admit([(judge_id, JUDGE, request.model_dump(mode="json"))]))
        return judge_id

    def admit(self, items: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
        """Admit ``(eval_id, kind, request)`` items, all or none: the raw answer
        (``raise_for_refusal`` turns a refusal into its exception)."""
        return self._call("admit", self.user, items)

    def finished(self, eval_ids: list[str]) -> list[dict[str, Any]]:
        """The final results among ``eval_ids``, as JSON (one store query)."""
        return self._call("finished", self.user, eval_ids)

    def limits(self) -> dict[str, int]:
        return self._call("limits")

    def cancel(self, eval_id: str) -> str:
        return self._call("cancel", self.user, eval_id)

    def depth(self) -> dict[str, int]:
        return self._call("depth")
