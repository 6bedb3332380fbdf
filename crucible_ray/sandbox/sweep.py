"""Remove sandboxes whose owner process is gone (crashed callers, killed actors, restarts)."""

from __future__ import annotations

import shutil
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
    if work_root.is_dir():
        for owner_dir in work_root.iterdir():
            if everything or not owner_alive(owner_dir.name):
                shutil.rmtree(owner_dir, ignore_errors=True)
    return removed
