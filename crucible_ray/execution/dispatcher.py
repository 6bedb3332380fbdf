"""The Dispatcher: the one place where evaluations are admitted, queued, routed and retried.

A detached Ray actor on the control plane (never on an executor node). It

* bounds admission: when running plus queued evaluations reach the limit, a submission is
  refused at once with a retry-after hint, so the queue never grows without bound;
* routes each evaluation to the least-loaded ready executor actor with a free slot;
* retries an evaluation once on another executor when its actor (or node) dies, then ends it
  as ``error`` with the reason; nothing waits forever (queue and call timeouts);
* cancels queued or running evaluations (the sandbox is killed);
* autoscales the executor actors between ``min_actors`` and ``max_actors``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from pydantic import ValidationError
from ray.exceptions import RayActorError, RayTaskError

from crucible_ray.audit import audit_evaluation, audit_to_file
from crucible_ray.errors import (
    ImageMissing,
    InvalidRequest,
    SandboxStartFailed,
    SandboxUnavailable,
)
from crucible_ray.execution import telemetry
from crucible_ray.execution.autoscale import decide
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.executor import ExecutorActor
from crucible_ray.execution.fairness import FairQueue
from crucible_ray.execution.recorder import ResultRecorder
from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.limits import budget_s, check_request
from crucible_ray.judge.models import JudgeRequest, JudgeResult
from crucible_ray.judge.verdicts import Verdict
from crucible_ray.languages import IMAGES, LanguageSpec, get_image
from crucible_ray.models import EvalRequest, EvalResult, EvalStatus, utcnow
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.topology import executor_actor_options

log = logging.getLogger(__name__)
RemoteExecutor = ray.remote(ExecutorActor)
MAX_ATTEMPTS = 2  # the first run plus one retry on another executor
START_FAILURES_BEFORE_REFUSING = 3
PROBE_INTERVAL_S = 2.0
EVAL, JUDGE = "eval", "judge"  # what a job is: an evaluation, or a judged submission


@dataclass
class Job:
    eval_id: str
    request: dict[str, Any] | None
    language: str
    image: str
    timeout_s: float
    queued_at: float = field(default_factory=time.monotonic)
    admitted_at: float = field(default_factory=time.monotonic)
    created_at: Any = field(default_factory=utcnow)
    status: EvalStatus = EvalStatus.QUEUED
    attempts: int = 0
    actor_id: str | None = None
    result: dict[str, Any] | None = None
    cancel_requested: bool = False
    context: dict[str, Any] = field(default_factory=dict)  # who asked (for the audit log)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    kind: str = EVAL  # or JUDGE: a judged submission (crucible_ray.judge)
    tests: int = 0  # a judged submission's

    @property
    def user(self) -> str:
        """Whose it is, for fair shares: the API user, ``batch:<login>``, or "" (unnamed)."""
        return str(self.context.get("user") or "")


@dataclass
class Executor:
    actor_id: str
    handle: Any
    slots: int
    ready: bool = False
    node_id: str | None = None
    owner: str | None = None  # the owner label of its sandbox containers
    inflight: set[str] = field(default_factory=set)
    idle_since: float | None = None


class Dispatcher:
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = DispatcherConfig.model_validate(config or {})
        self.policy = self.config.policy
        self._executors: dict[str, Executor] = {}
        self._queue = FairQueue()
        self._running_by_user: collections.Counter[str] = collections.Counter()
        self._jobs: dict[str, Job] = {}
        self._finished: collections.deque[str] = collections.deque()
        self.counters: collections.Counter[str] = collections.Counter()
        self._start_failures = 0
        self._last_start_error = ""
        self._last_ready_at = time.monotonic()
        self._last_probe_at = 0.0
        self._next_start_at = 0.0
        self._control: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._recorder = ResultRecorder(self.config.store_url())
        if self.config.store_state_dir is not None:
            audit_to_file(Path(self.config.store_state_dir))

    # public API (called through Ray) ---------------------------------------------------------

    async def submit(
        self, eval_id: str, request: dict[str, Any], context: dict[str, Any] | None = None,
        kind: str = EVAL,
    ) -> dict[str, Any]:  # fmt: skip
        """Admit one evaluation (``kind`` judge: a JudgeRequest), or refuse it at once.
        Idempotent by ``eval_id``.

        ``context`` (user, client address, code hash) goes to the audit event at the end.
        """
        self._ensure_running()
        if eval_id in self._jobs:
            return {"accepted": True, "duplicate": True}
        try:
            if kind == JUDGE:
                parsed: EvalRequest | JudgeRequest = JudgeRequest.model_validate(request)
                spec, timeout_s = self._judge_limits(parsed)
            else:
                parsed = EvalRequest.model_validate(request)
                spec, _, timeout_s = self.policy.resolve(parsed)
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = ".".join(str(p) for p in first["loc"]) or None
            telemetry.refused("invalid")
            return _refusal("invalid", first["msg"], field=field_name)
        except InvalidRequest as exc:
            telemetry.refused("invalid")
            return _refusal("invalid", str(exc), field=exc.field)
        unavailable = self._unavailable_reason()
        if unavailable:
            self.counters["rejected_unavailable"] += 1
            telemetry.refused("unavailable")
            return _refusal("unavailable", unavailable)
        if self._admitted() >= self.config.admission_limit:
            self.counters["rejected_overloaded"] += 1
            telemetry.refused("overloaded")
            return _refusal(
                "overloaded",
                f"{self._admitted()} evaluations running or queued (limit "
                f"{self.config.admission_limit})",
                retry_after_s=self._retry_after_s(),
            )
        job = Job(eval_id, parsed.model_dump(), parsed.language, spec.name, timeout_s,
                  context=context or {}, kind=kind)  # fmt: skip
        own, limit = self._admitted_for(job.user), self.config.user_admission_limit
        if own >= limit:
            self.counters["rejected_overloaded"] += 1
            telemetry.refused("overloaded")
            return _refusal("overloaded", f"{own} of your evaluations running or queued (limit "
                            f"{limit} per user)", retry_after_s=self._retry_after_s())  # fmt: skip
        if isinstance(parsed, JudgeRequest):
            job.tests = len(parsed.tests)
        self._jobs[eval_id] = job
        self._queue.append(job.user, eval_id, job.queued_at)
        self.counters["admitted"] += 1
        telemetry.admitted()
        self._pump()
        return {"accepted": True}

    def _judge_limits(self, request: JudgeRequest) -> tuple[LanguageSpec, float]:
        """The image and the longest the judging may take; InvalidRequest if refused."""
        spec = get_image(request.language, request.image)
        policy = self.policy.for_language(spec.policy_overrides)
        check_request(request, policy, spec)
        return spec, budget_s(request, policy)

    async def wait(self, eval_id: str, timeout_s: float = 0.0) -> dict[str, Any] | None:
        """The evaluation's result once final (or its current state after ``timeout_s``)."""
        job = self._jobs.get(eval_id)
        if job is None:  # forgotten, but its result may still wait for the store
            return self._recorder.pending(eval_id)
        if timeout_s > 0 and not job.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.done.wait(), timeout_s)
        return self._snapshot(job)

    async def cancel(self, eval_id: str) -> dict[str, Any] | None:
        """Cancel a queued or running evaluation. None if unknown; ``cancelled`` False if final."""
        job = self._jobs.get(eval_id)
        if job is None:
            return None
        if job.status.is_final:
            return {"cancelled": False, "status": job.status.value}
        job.cancel_requested = True
        if job.status == EvalStatus.QUEUED:
            self._queue.remove(eval_id)
            self._finish(job, self._result(job, EvalStatus.CANCELLED))
        else:
            executor = self._executors.get(job.actor_id or "")
            if executor is not None:
                # If the executor is gone, _run finishes the job as cancelled.
                with contextlib.suppress(RayActorError):
                    await executor.handle.cancel.remote(eval_id)
        return {"cancelled": True, "status": EvalStatus.CANCELLED.value}

    async def config_dump(self) -> dict[str, Any]:
        """The configuration it started with. It holds no secret: the store's URL was read
        from this process's environment or secret file, never given through Ray."""
        return self.config.model_dump()

    async def stats(self) -> dict[str, Any]:
        self._ensure_running()
        running = sum(len(e.inflight) for e in self._executors.values())
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "queued": len(self._queue),
            "running": running,
            "admission_limit": self.config.admission_limit,
            "executors": [
                {
                    "actor_id": e.actor_id,
                    "node_id": e.node_id,
                    "ready": e.ready,
                    "slots": e.slots,
                    "busy": len(e.inflight),
                    "owner": e.owner,
                }
                for e in self._executors.values()
            ],
            "slots_ready": sum(e.slots for e in self._executors.values() if e.ready),
            "counters": dict(self.counters),
            "unrecorded": self._recorder.unrecorded,  # final results the store has not taken
            "last_start_error": self._last_start_error,
        }

    async def shutdown(self) -> None:
        """Stop every executor actor (their sandboxes are destroyed)."""
        if self._control is not None:
            self._control.cancel()
        await asyncio.gather(*(self._stop(a) for a in list(self._executors)),
                             return_exceptions=True)  # fmt: skip

    # scheduling ------------------------------------------------------------------------------

    def _admitted(self) -> int:
        return len(self._queue) + sum(len(e.inflight) for e in self._executors.values())

    def _admitted_for(self, user: str) -> int:
        return self._queue.queued_by(user) + self._running_by_user[user]

    def _retry_after_s(self) -> float:
        slots = sum(e.slots for e in self._executors.values() if e.ready) or 1
        return max(1.0, round(self._admitted() / slots, 1))

    def _unavailable_reason(self) -> str | None:
        """Why no executor can take work, or None. Refused when none is ready and either
        starting them keeps failing or none has been ready for ``unavailable_after_s`` (e.g.
        every executor node is gone and none is coming back)."""
        if any(e.ready for e in self._executors.values()):
            self._last_ready_at = time.monotonic()
            return None
        # Users get the sentence; why executors fail to start is in stats() and the log.
        if self._start_failures >= START_FAILURES_BEFORE_REFUSING:
            return f"{Reason.NO_EXECUTOR.sentence}: executors fail to start"
        if time.monotonic() - self._last_ready_at > self.config.unavailable_after_s:
            return f"{Reason.NO_EXECUTOR.sentence}: none has been ready for a while"
        return None

    def _pump(self) -> None:
        while self._queue:
            candidates = [e for e in self._executors.values()
                          if e.ready and len(e.inflight) < e.slots]  # fmt: skip
            if not candidates:
                return
            executor = min(candidates, key=lambda e: len(e.inflight) / e.slots)
            job = self._jobs[self._queue.pop_next(self._running_by_user)]
            self._running_by_user[job.user] += 1
            job.status, job.actor_id = EvalStatus.RUNNING, executor.actor_id
            job.attempts += 1
            executor.inflight.add(job.eval_id)
            executor.idle_since = None
            self._spawn(self._recorder.mark_running(job.eval_id))
            self._spawn(self._run(executor, job))

    async def _run(self, executor: Executor, job: Job) -> None:
        ref, limit_s = None, 0.0
        try:
            if job.kind == JUDGE:
                ref = executor.handle.judge.remote(job.eval_id, job.request)
                limit_s = job.timeout_s + self.config.executor_call_slack_s  # its whole budget
            else:
                ref = executor.handle.run.remote(job.eval_id, job.request)
                # The run's time, a compiled language's compile stage, and the call's slack.
                limit_s = job.timeout_s + IMAGES[job.image].compile_time_s
                limit_s += self.config.executor_call_slack_s
            result = await asyncio.wait_for(ref, limit_s)
            self._finish(job, result)
        except RayTaskError as exc:
            if isinstance(exc.cause, SandboxStartFailed):  # this once; the node still works
                log.warning("evaluation %s: %s", job.eval_id, exc.cause)
                self._retry_or_fail(job, Reason.SANDBOX_START_FAILED)
            elif isinstance(exc.cause, ImageMissing):  # one image: the executor runs the rest
                log.error("evaluation %s: %s", job.eval_id, exc.cause)
                self._finish(job, self._result(job, EvalStatus.ERROR, Reason.IMAGE_UNAVAILABLE))
            elif isinstance(exc.cause, SandboxUnavailable):  # that node cannot run sandboxes
                self._lose(executor, f"sandboxes unavailable on its node: {exc.cause}")
                self._retry_or_fail(job, Reason.EXECUTOR_CANNOT_RUN_SANDBOXES)
            else:
                log.error("evaluation %s: executor failed: %s", job.eval_id, exc)
                self._finish(job, self._result(job, EvalStatus.ERROR, Reason.INTERNAL))
        except RayActorError as exc:  # the actor or its whole node died
            self._lose(executor, str(exc))
            self._retry_or_fail(job, Reason.EXECUTOR_LOST)
        except TimeoutError:
            # The sandbox enforces the program's own deadline, so an executor silent past it
            # (plus slack) is hung: it gets no more work, and the evaluation runs elsewhere.
            # Ray 2.60 refuses force=True for actor tasks; killing the actor ends the task.
            with contextlib.suppress(Exception):
                ray.cancel(ref)  # type: ignore[arg-type]  # set: the call was made
            self._lose(executor, f"no answer within {limit_s:g}s for {job.eval_id}")
            self._retry_or_fail(job, Reason.EXECUTOR_UNRESPONSIVE)
        finally:
            self._running_by_user[job.user] -= 1
            if self._running_by_user[job.user] <= 0:
                del self._running_by_user[job.user]
            executor.inflight.discard(job.eval_id)
            if not executor.inflight:
                executor.idle_since = time.monotonic()
            self._pump()

    def _retry_or_fail(self, job: Job, reason: Reason) -> None:
        if job.cancel_requested:
            self._finish(job, self._result(job, EvalStatus.CANCELLED))
        elif job.attempts < MAX_ATTEMPTS:
            self.counters["retried"] += 1
            telemetry.retried()
            job.status, job.actor_id = EvalStatus.QUEUED, None
            job.queued_at = time.monotonic()
            self._queue.appendleft(job.user, job.eval_id, job.queued_at)
        else:
            self._finish(job, self._result(job, EvalStatus.ERROR, reason))

    def _finish(self, job: Job, result: dict[str, Any]) -> None:
        if job.done.is_set():
            return
        job.result, job.request = result, None  # the code is not kept once finished
        job.status = EvalStatus(result["status"])
        job.done.set()
        self.counters[f"finished_{job.status.value}"] += 1
        telemetry.finished(result, time.monotonic() - job.admitted_at)
        audit_evaluation(result, job.context)
        self._spawn(self._recorder.record(result, judged=job.kind == JUDGE))
        self._finished.append(job.eval_id)
        while len(self._finished) > self.config.result_retention:
            self._jobs.pop(self._finished.popleft(), None)

    def _result(self, job: Job, status: EvalStatus, reason: Reason | None = None) -> dict[str, Any]:
        final = {"finished_at": utcnow()} if status.is_final else {}
        if job.kind == JUDGE:
            verdict = {"verdict": Verdict.IE} if status == EvalStatus.ERROR else {}
            return JudgeResult(id=job.eval_id, status=status, language=job.language,
                               image=job.image, total=job.tests, created_at=job.created_at,
                               compare_version=COMPARE_VERSION, driver_version=DRIVER_VERSION,
                               **verdict, **error_fields(reason),
                               **final).model_dump(mode="json")  # fmt: skip
        return EvalResult(id=job.eval_id, status=status, language=job.language, image=job.image,
                          created_at=job.created_at, **error_fields(reason),
                          **final).model_dump(mode="json")  # fmt: skip

    def _snapshot(self, job: Job) -> dict[str, Any]:
        return job.result or self._result(job, job.status)

    # executor pool ---------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._control is None or self._control.done():
            self._control = asyncio.get_running_loop().create_task(self._control_loop())

    async def _control_loop(self) -> None:
        while True:
            try:
                self._scale()
                self._expire_queued()
            except Exception:  # the loop must survive anything
                log.exception("dispatcher control loop")
            await asyncio.sleep(self.config.scale_interval_s)

    def _scale(self) -> None:
        now = time.monotonic()
        if now - self._last_probe_at >= PROBE_INTERVAL_S:
            self._last_probe_at = now
            for executor in list(self._executors.values()):
                if executor.ready:
                    self._spawn(self._probe(executor))
        self._unavailable_reason()  # keeps track of when an executor was last ready
        running = sum(len(e.inflight) for e in self._executors.values())
        telemetry.pool(len(self._queue), running, self.config.admission_limit,
                       self._executors.values())  # fmt: skip
        idle = {a: e.idle_since for a, e in self._executors.items()
                if e.ready and not e.inflight and e.idle_since is not None}  # fmt: skip
        decision = decide(
            demand=self._admitted(),
            live=len(self._executors),
            idle_since=idle,
            now=now,
            slots_per_actor=self.config.slots_per_actor,
            min_actors=self.config.min_actors,
            max_actors=self.config.max_actors,
            downscale_delay_s=self.config.downscale_delay_s,
        )
        if decision.add and now >= self._next_start_at:
            for _ in range(decision.add):
                self._start()
        for actor_id in decision.remove:
            self._spawn(self._stop(actor_id))

    async def _probe(self, executor: Executor) -> None:
        """Idle executors are called by nobody: ask each one now and then, so that a dead actor
        or node is noticed (and replaced) before work is routed to it."""
        try:
            timeout_s = self.config.probe_timeout_s
            await asyncio.wait_for(executor.handle.info.remote(), timeout_s)
        except RayActorError as exc:
            self._lose(executor, f"liveness probe: {_reason(exc)}")
        except TimeoutError:  # hung (e.g. its process stopped): route nothing more to it
            self._lose(executor, f"no answer to its liveness probe in {timeout_s:g}s")

    def _start(self) -> None:
        slots = self.config.slots_per_actor
        handle = RemoteExecutor.options(
            **executor_actor_options(slots), max_restarts=0, max_concurrency=1000
        ).remote(
            slots,
            self.policy,
            {"python": slots * self.config.warm_per_slot},
            self.config.boot_workers_per_actor,
            self.config.state_dir,
        )
        executor = Executor(handle._actor_id.hex(), handle, slots)
        self._executors[executor.actor_id] = executor
        self.counters["executors_started"] += 1
        self._spawn(self._await_ready(executor))

    async def _await_ready(self, executor: Executor) -> None:
        try:
            info = await executor.handle.info.remote()  # pending until a node has room
        except (RayActorError, RayTaskError) as exc:
            self._executors.pop(executor.actor_id, None)
            self._start_failures += 1
            self._last_start_error = _reason(exc)
            self._next_start_at = time.monotonic() + min(30.0, 2.0**self._start_failures)
            self.counters["executor_start_failures"] += 1
            log.warning("executor failed to start: %s", self._last_start_error)
            return
        self._start_failures = 0
        executor.ready, executor.node_id, executor.owner = True, info["node_id"], info["owner"]
        executor.idle_since = time.monotonic()
        self._pump()

    async def _stop(self, actor_id: str) -> None:
        executor = self._executors.pop(actor_id, None)
        if executor is None:
            return
        self.counters["executors_stopped"] += 1
        with contextlib.suppress(RayActorError, RayTaskError, TimeoutError):
            await asyncio.wait_for(executor.handle.shutdown.remote(), 30)
        ray.kill(executor.handle, no_restart=True)

    def _lose(self, executor: Executor, reason: str) -> None:
        if self._executors.pop(executor.actor_id, None) is None:
            return
        self.counters["executors_lost"] += 1
        telemetry.executor_lost()
        log.warning("executor %s lost: %s", executor.actor_id, reason)
        ray.kill(executor.handle, no_restart=True)
        survivors = [e for e in self._executors.values() if e.ready]
        if survivors:  # clean up what the dead actor left on its (maybe shared) engine
            self._spawn(_quietly(survivors[0].handle.sweep.remote()))

    def _expire_queued(self) -> None:
        for eval_id in list(self._queue.expired(time.monotonic() - self.config.queue_timeout_s)):
            job = self._jobs[eval_id]
            self._finish(job, self._result(job, EvalStatus.ERROR, Reason.QUEUE_TIMEOUT))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Unavailable|Missing)\b.*: ")


def _reason(exc: BaseException) -> str:
    """The root error of a Ray failure, without Ray's traceback (e.g. the constructor's)."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    causes = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (causes[-1] if causes else lines[-1] if lines else repr(exc))[:500]


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.warning("background call failed: %s", exc)


def _refusal(reason: str, message: str, *, field: str | None = None,
             retry_after_s: float | None = None) -> dict[str, Any]:  # fmt: skip
    return {"accepted": False, "reason": reason, "message": message, "field": field,
            "retry_after_s": retry_after_s}  # fmt: skip
