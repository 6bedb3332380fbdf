"""The ledger of the containers one SandboxRunner created: what the orphan sweep may touch.

The engine can forget a container whose start failed inside gVisor while its sandbox processes
keep running; only the ids written here (by us, right after ``create_container`` returned and
before the container started) make such processes provably ours. Entries are removed by the
sweep once the engine has forgotten the container and no gVisor process of it is left.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

LEDGER_DIR = ".containers"
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def record(owner_dir: Path, container_id: str) -> None:
    ledger = owner_dir / LEDGER_DIR
    ledger.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ledger / container_id).touch(mode=0o600)


def recorded(owner_dir: Path) -> set[str]:
    ledger = owner_dir / LEDGER_DIR
    if not ledger.is_dir():
        return set()
    return {p.name for p in ledger.iterdir() if _CONTAINER_ID.match(p.name)}


def forget(owner_dir: Path, container_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (owner_dir / LEDGER_DIR / container_id).unlink()
