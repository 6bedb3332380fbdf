"""Supervisor: keeps the queue plane's processes alive and sized, off the evaluations' path.

It starts the Dispatch actors (named, detached, restarted by Ray), and the executor actors
(named, detached: a restarted supervisor adopts them), scales the executors to the queue's
demand with ``autoscale.decide``, replaces executors that die or stop answering, and runs the
queue's upkeep (lapsed leases, queue timeouts). No evaluation passes through it: if it dies,
evaluations go on running and ending; only scaling and upkeep wait for its restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from crucible_ray.execution.autoscale import decide
from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.dispatch import Dispatch
from crucible_ray.execution.executor import ExecutorActor
from crucible_ray.topology import NAMESPACE, QUIET, control_plane_options, executor_actor_options

log = logging.getLogger(__name__)
DISPATCH_PREFIX, EXECUTOR_PREFIX = "crucible-dispatch-", "crucible-executor-"
PROBE_TIMEOUT_S = 10.0


@dataclass
class Member:
    name: str
    handle: Any
    pulling: Any  # the ref of its pull() call: it ends when the actor stops or dies
    idle_since: float | None = None
    ready: bool = False
    running: int = 0  # as its last probe found


class Supervisor:
    def __init__(self, config: dict[str, Any], dispatchers: int = 2,
                 queue: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.config = DispatcherConfig.model_validate(config)
        self.dispatch_names = [f"{DISPATCH_PREFIX}{i}" for i in range(dispatchers)]
        self._dispatch = [
            ray.remote(Dispatch).options(
                name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                max_restarts=-1, max_task_retries=0, max_concurrency=32,
                **control_plane_options(), **QUIET,
            ).remote(config, queue)
            for name in self.dispatch_names
        ]  # fmt: skip
        self._members: dict[str, Member] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self.counters = {"executors_started": 0, "executors_lost": 0, "expired": 0}
        self._adopt()
        # Started here, not only by start(): after Ray restarts this actor nobody calls it. An
        # async actor's __init__ runs with its event loop set (Serve's controller does this).
        self._task: asyncio.Task[None] | None = asyncio.get_event_loop().create_task(self._loop())

    def _adopt(self) -> None:
        """Executors a previous incarnation of this supervisor started are still running."""
        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry["namespace"] == NAMESPACE and entry["name"].startswith(EXECUTOR_PREFIX):
                with contextlib.suppress(ValueError):
                    handle = ray.get_actor(entry["name"], namespace=NAMESPACE)
                    pulling = handle.pull.remote(self.dispatch_names)  # a no-op if it pulls
                    self._members[entry["name"]] = Member(entry["name"], handle, pulling)

    async def start(self) -> dict[str, Any]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return await self.stats()

    async def stats(self) -> dict[str, Any]:
        depth = await self._any_dispatch("depth")
        running = {name: m.running for name, m in sorted(self._members.items())}
        return {"depth": depth, "executors": running,
                "ready": sum(m.ready for m in self._members.values()),
                "counters": dict(self.counters), "dispatch": self.dispatch_names}  # fmt: skip

    async def config_dump(self) -> dict[str, Any]:
        """What it was started with (no secret is in it), to tell a changed deployment."""
        return {"config": self.config.model_dump(), "dispatchers": len(self.dispatch_names)}

    async def executor_names(self) -> list[str]:
        return sorted(self._members)

    async def shutdown(self) -> None:
        """Stop every executor after its running work is reported, then the Dispatch actors."""
        if self._task is not None:
            self._task.cancel()
        members = list(self._members.values())
        await asyncio.gather(*(self._stop(m) for m in members), return_exceptions=True)
        for handle in self._dispatch:
            ray.kill(handle, no_restart=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # the loop must survive anything
                log.exception("supervisor loop")
            await asyncio.sleep(self.config.scale_interval_s)

    async def _tick(self) -> None:
        self.counters["expired"] += await self._any_dispatch("expire")
        depth = await self._any_dispatch("depth")
        for member in list(self._members.values()):
            # In the background: a hung executor's probe (up to PROBE_TIMEOUT_S) must not hold
            # up the upkeep and scaling of this tick; its next probe waits for it to end.
            probing = self._probes.get(member.name)
            if probing is None or probing.done():
                self._probes[member.name] = asyncio.get_running_loop().create_task(
                    self._probe(member)
                )
        for name in [n for n in self._probes if n not in self._members]:
            self._probes.pop(name)
        now = time.monotonic()
        decision = decide(
            demand=depth["queued"] + depth["running"], live=len(self._members),
            idle_since={m.name: m.idle_since for m in self._members.values()
                        if m.idle_since is not None},
            now=now, slots_per_actor=self.config.slots_per_actor,
            min_actors=self.config.min_actors, max_actors=self.config.max_actors,
            downscale_delay_s=self.config.downscale_delay_s,
        )  # fmt: skip
        for _ in range(decision.add):
            self._start()
        for name in decision.remove:
            asyncio.get_running_loop().create_task(self._stop(self._members[name]))

    async def _probe(self, member: Member) -> None:
        """Dead, hung or stopped: replaced (its leased work is queued again when its lease
        lapses). Otherwise note whether it is idle, for scaling down."""
        ended, _ = ray.wait([member.pulling], timeout=0)
        try:
            if ended:
                await member.pulling  # raises if the actor died
                raise RuntimeError("stopped pulling")
            info = await asyncio.wait_for(member.handle.info.remote(), PROBE_TIMEOUT_S)
        except (RayActorError, RayTaskError, RuntimeError, TimeoutError) as exc:
            if member.ready or ended:
                self._lose(member, type(exc).__name__)
            return  # not started yet: Ray is placing it (its pull() waits meanwhile)
        member.ready, member.running = True, info["running"]
        if info["running"]:
            member.idle_since = None
        elif member.idle_since is None:
            member.idle_since = time.monotonic()

    def _start(self) -> None:
        slots = self.config.slots_per_actor
        name = f"{EXECUTOR_PREFIX}{uuid.uuid4().hex[:12]}"
        handle = ray.remote(ExecutorActor).options(
            name=name, namespace=NAMESPACE, lifetime="detached", max_restarts=0,
            max_concurrency=1000, **executor_actor_options(slots),
        ).remote(slots, self.config.policy, {"python": slots * self.config.warm_per_slot},
                 self.config.boot_workers_per_actor, self.config.state_dir)  # fmt: skip
        self._members[name] = Member(name, handle, handle.pull.remote(self.dispatch_names))
        self.counters["executors_started"] += 1

    async def _stop(self, member: Member) -> None:
        self._members.pop(member.name, None)
        with contextlib.suppress(RayActorError, RayTaskError, TimeoutError):
            await asyncio.wait_for(member.handle.stop_pulling.remote(), 30)
            await asyncio.wait_for(member.pulling, 600)  # its running work ends and is reported
            await asyncio.wait_for(member.handle.shutdown.remote(), 30)
        ray.kill(member.handle, no_restart=True)

    def _lose(self, member: Member, why: str) -> None:
        if self._members.pop(member.name, None) is None:
            return
        self.counters["executors_lost"] += 1
        log.warning("executor %s lost (%s): its work is queued again", member.name, why)
        ray.kill(member.handle, no_restart=True)

    async def _any_dispatch(self, method: str) -> Any:
        for handle in self._dispatch:
            with contextlib.suppress(RayActorError):
                return await getattr(handle, method).remote()
        raise RuntimeError("no Dispatch actor answers")
