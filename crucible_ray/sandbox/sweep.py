"""Remove sandboxes whose owner process is gone (crashed callers, killed actors, restarts)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from pathlib import Path

import docker.errors

from crucible_ray.sandbox.engine import (
    ENGINE_ERRORS,
    LABEL_MANAGED,
    LABEL_OWNER,
    Engine,
    owner_alive,
)


def sweep_orphans(engine: Engine, work_root: Path, *, everything: bool = False) -> int:
    """Remove every crucible container (and code directory) whose owner is dead.

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
    for pid in stray_gvisor_processes(engine):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if work_root.is_dir():
        for owner_dir in work_root.iterdir():
            if everything or not owner_alive(owner_dir.name):
                shutil.rmtree(owner_dir, ignore_errors=True)
    return removed


_DOCKER_BUNDLE = re.compile(rb"/moby/([0-9a-f]{64})")


def stray_gvisor_processes(engine: Engine) -> list[int]:
    """gVisor processes of Docker containers the engine no longer knows.

    Seen here: a container whose start failed inside runsc left its sentry and gofer running
    after Docker had forgotten it. Only processes under Docker's own bundle paths are counted.
    """
    known = {c["Id"] for c in engine.api.containers(all=True)}
    stray = []
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
        if match and match.group(1).decode() not in known:
            stray.append(int(proc.name))
    return stray
