"""Remove runsc sandboxes whose owner is dead: only in our own state directories.

An owner's sandboxes live in ``<work_root>/<owner>/runsc`` (its ``--root``), and its ledger
records every id before the sandbox starts. The sweep lists only those, kills only processes
whose command line names that state directory, and never asks runsc about any other root: a
gVisor sandbox of anyone else on this machine is invisible to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.owners import owner_alive, process_start_time
from crucible_ray.sandbox.runsc import cgroups, runsc


def _swept_owners(work_root: Path, state_dir: str, everything: bool) -> list[Path]:
    """Owner directories of this backend (they hold a runsc state directory) to sweep."""
    if not work_root.is_dir():
        return []
    return [owner_dir for owner_dir in sorted(work_root.iterdir())
            if (owner_dir / state_dir).is_dir()
            and (everything or not owner_alive(owner_dir.name))]  # fmt: skip


def count_orphans(work_root: Path, state_dir: str) -> int:
    """How many sandboxes of dead owners :func:`sweep_owners` would remove; touches nothing."""
    count = 0
    for owner_dir in _swept_owners(work_root, state_dir, everything=False):
        root = owner_dir / state_dir
        live = runsc.state_ids(root)
        count += len(live) + (1 if processes_of(root) and not live else 0)
    return count


def sweep_owners(binary: str, work_root: Path, state_dir: str, *, everything: bool = False) -> int:
    """Kill and delete the sandboxes of dead owners (all owners with ``everything``); remove
    their cgroups and directories. Idempotent. Returns how many sandboxes were removed."""
    removed = 0
    for owner_dir in _swept_owners(work_root, state_dir, everything):
        root = owner_dir / state_dir
        live = runsc.state_ids(root)
        processes = processes_of(root)
        for pid, start_time in processes:
            if process_start_time(pid) == start_time:  # still the process we judged
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for sandbox_id in live | ledger.recorded(owner_dir):
            if sandbox_id in runsc.state_ids(root):
                runsc.command(binary, root, "delete", "--force", sandbox_id)
            gone = sandbox_id not in runsc.state_ids(root)
            if gone and cgroups.remove_tree(cgroups.cgroups_path(owner_dir.name, sandbox_id), 2):
                ledger.forget(owner_dir, sandbox_id)
                shutil.rmtree(owner_dir / "bundles" / sandbox_id, ignore_errors=True)
                removed += sandbox_id in live
        if processes and not live:
            removed += 1  # processes runsc had no state for any more
        cgroups.remove_owner(owner_dir.name)
        if not ledger.recorded(owner_dir):
            shutil.rmtree(owner_dir, ignore_errors=True)
    return removed


def processes_of(root: Path) -> list[tuple[int, str]]:
    """(pid, start time) of every runsc process started with ``--root`` ``root``."""
    wanted = (b"--root\0" + bytes(root) + b"\0", b"--root=" + bytes(root) + b"\0")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if os.path.basename(cmdline.split(b"\0", 1)[0]).startswith(b"runsc") and any(
            w in cmdline for w in wanted
        ):
            pid = int(proc.name)
            found.append((pid, process_start_time(pid)))
    return found
