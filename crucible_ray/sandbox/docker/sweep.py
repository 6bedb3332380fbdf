"""Remove sandboxes whose owner process is gone (crashed callers, killed actors, restarts).

Only what is provably ours and provably orphaned is touched: containers carrying our labels
whose owner token names a dead process on this host, and gVisor processes of containers that
our own ledger recorded and the engine no longer knows. Other gVisor users on the machine, and
containers created while the sweep runs, are never signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.docker.engine import ENGINE_ERRORS, LABEL_MANAGED, LABEL_OWNER, Engine
from crucible_ray.sandbox.owners import owner_alive, process_start_time


def sweep_orphans(engine: Engine, work_root: Path, *, everything: bool = False) -> int:
    """Remove every crucible container (and code directory) whose owner is dead, and kill the
    gVisor processes the engine forgot of containers our ledgers recorded.

    ``everything=True`` removes all crucible containers on this engine, owners alive or not.
    Returns the number of containers removed.
    """
    removed = 0
    containers = engine.api.containers(all=True, filters={"label": LABEL_MANAGED})
    for container in containers:
        owner = container["Labels"].get(LABEL_OWNER, "")
        if not everything and owner_alive(owner):
            continue
        try:
            engine.api.remove_container(container["Id"], force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except ENGINE_ERRORS:
            continue
    for process in stray_gvisor_processes(engine, work_root):
        process.kill()
    if work_root.is_dir():
        for owner_dir in work_root.iterdir():
            dead = everything or not owner_alive(owner_dir.name)
            if dead and not ledger.recorded(owner_dir):  # kept until its strays are gone
                shutil.rmtree(owner_dir, ignore_errors=True)
    return removed


@dataclass(frozen=True)
class GvisorProcess:
    pid: int
    start_time: str
    container_id: str

    def kill(self) -> None:
        # The pid must still be the process we judged (pids are reused fast here).
        if process_start_time(self.pid) == self.start_time:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)


_DOCKER_BUNDLE = re.compile(rb"/moby/([0-9a-f]{64})")


def stray_gvisor_processes(engine: Engine, work_root: Path) -> list[GvisorProcess]:
    """gVisor processes of containers recorded in our ledgers that the engine no longer knows.

    Order matters: ledgers are read first, then ``/proc``, then the engine's list. A ledger
    entry exists only once the engine knew its container, and a process seen in ``/proc``
    belongs to a container the engine knew when it was created; so an id missing from the list
    read last was removed (or lost) by the engine, never created in between. Ledger entries of
    forgotten containers with no process left are dropped.
    """
    owners = {}
    if work_root.is_dir():
        for owner_dir in work_root.iterdir():
            for container_id in ledger.recorded(owner_dir):
                owners[container_id] = owner_dir
    if not owners:
        return []
    processes = [p for p in _runsc_processes() if p.container_id in owners]
    known = {c["Id"] for c in engine.api.containers(all=True)}
    stray = [p for p in processes if p.container_id not in known]
    running = {p.container_id for p in processes}
    for container_id, owner_dir in owners.items():
        if container_id not in known and container_id not in running:
            ledger.forget(owner_dir, container_id)
    return stray


def _runsc_processes() -> list[GvisorProcess]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if not cmdline.startswith(b"runsc"):
            continue
        match = _DOCKER_BUNDLE.search(cmdline)
        if match:
            pid = int(proc.name)
            found.append(GvisorProcess(pid, process_start_time(pid), match.group(1).decode()))
    return found
