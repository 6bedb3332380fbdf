"""The per-sandbox cgroup (v1) of the runsc backend: ``crucible-runsc/<owner key>/<sandbox>``.

We create the memory, cpu and pids cgroups ourselves and write the bundle's limits into them
before runsc starts; runsc then joins the sandbox into them (``linux.cgroupsPath``) but, as
they exist already, neither rewrites nor removes them. Owning them is what lets us read the
memory cgroup's OOM-kill count after the sandbox is gone (runsc removes the cgroups it
creates before ``runsc run`` returns). runsc still sizes gVisor's memory from our limit.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
from pathlib import Path
from typing import Any

from crucible_ray.sandbox.oom import oom_state

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "crucible-runsc"
OURS = ("memory", "cpu", "pids")
# runsc creates (and removes) the sandbox's cgroup in these; what it leaves is our parent.
ALL_V1 = ("blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "net_cls",
          "net_prio", "hugetlb", "perf_event", "pids", "rdma", "systemd")  # fmt: skip


def owner_key(owner: str) -> str:
    """A short, path-safe name for an owner token."""
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


def cgroups_path(owner: str, sandbox_id: str) -> str:
    return f"/{PARENT}/{owner_key(owner)}/{sandbox_id}"


def usable() -> str | None:
    """Why this host cannot enforce the limits, or None."""
    for controller in OURS:
        if not os.access(CGROUP_ROOT / controller, os.W_OK):
            return f"the {controller} cgroup (v1) is not mounted writable"
    if not (CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes").exists():
        return "the memory cgroup has no swap accounting (swapaccount=1)"
    return None


class SandboxCgroup:
    def __init__(self, owner: str, sandbox_id: str) -> None:
        self.path = cgroups_path(owner, sandbox_id)

    def _dir(self, controller: str) -> Path:
        return CGROUP_ROOT / controller / self.path.lstrip("/")

    @property
    def memory_dir(self) -> Path:
        return self._dir("memory")

    def dirs(self) -> dict[str, Path]:
        """Our controllers' directories of this sandbox."""
        return {controller: self._dir(controller) for controller in OURS}

    def create(self, resources: dict[str, Any]) -> None:
        """Create our cgroups and apply ``linux.resources`` of the bundle, all but the CPU quota
        (see :meth:`throttle`). Order matters: memory+swap may never be below memory."""
        for controller in OURS:
            self._dir(controller).mkdir(parents=True, exist_ok=True)
        memory = self._dir("memory")
        (memory / "memory.limit_in_bytes").write_text(str(resources["memory"]["limit"]))
        (memory / "memory.memsw.limit_in_bytes").write_text(str(resources["memory"]["swap"]))
        (self._dir("cpu") / "cpu.cfs_period_us").write_text(str(resources["cpu"]["period"]))
        (self._dir("pids") / "pids.max").write_text(str(resources["pids"]["limit"]))

    def throttle(self, resources: dict[str, Any]) -> None:
        """Apply the CPU quota. Called once the launcher is ready and before the code is sent:
        gVisor's own boot (trusted, ~150 ms of CPU) is not slowed by the program's quota, the
        program never runs without it."""
        (self._dir("cpu") / "cpu.cfs_quota_us").write_text(str(resources["cpu"]["quota"]))

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this sandbox's memory cgroup."""
        state = oom_state(self.memory_dir)
        return 0 if state is None else state[1]

    def remove(self, wait_s: float = 2.0) -> bool:
        """Remove our cgroups; False if one is still busy (a process not yet reaped)."""
        return remove_tree(self.path, wait_s)


def remove_tree(path: str, wait_s: float = 0.0) -> bool:
    """rmdir ``path`` (and cgroups below it) in every v1 hierarchy; True when all are gone."""
    deadline = time.monotonic() + wait_s
    gone = True
    for controller in ALL_V1:
        top = CGROUP_ROOT / controller / path.lstrip("/")
        if not top.is_dir():
            continue
        for directory in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                        gone = False
                        break
                    time.sleep(0.02)
    return gone


def remove_owner(owner: str) -> None:
    """Drop an owner's empty parent cgroups (best effort: busy ones stay for the sweep)."""
    with contextlib.suppress(OSError):
        remove_tree(f"/{PARENT}/{owner_key(owner)}")
