"""Out-of-memory events of a sandbox's memory cgroup (v1), the moment they happen.

At the memory limit the kernel's OOM killer kills one process of the cgroup. Under gVisor that
can be a helper (a systrap stub, the gofer) rather than the sentry, and the sandbox then hangs
until its wall clock instead of ending: a slot held for the whole timeout and a result that says
``timed_out``. Watching the cgroup's OOM notification (``cgroup.event_control`` with an eventfd,
no polling) lets a backend end the whole sandbox at the first OOM and report it as such.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
SETTLE_S = 1.0


def oom_state(memory_dir: Path) -> tuple[bool, int] | None:
    """(under OOM now, OOM kills so far) of a memory cgroup; None once it is gone."""
    try:
        control = (memory_dir / "memory.oom_control").read_text()
    except OSError:
        return None
    fields = dict(line.split() for line in control.splitlines() if line)
    return fields.get("under_oom") == "1", int(fields.get("oom_kill", 0))


class OomWatch:
    """Calls ``on_oom`` (once, from a thread of its own) when the memory cgroup ``memory_dir``
    runs out of memory; :meth:`close` stops watching. A cgroup that cannot be watched is
    logged and left to the backend's own OOM report: this shortens a failure, it is not a
    safeguard."""

    def __init__(self, memory_dir: Path, on_oom: Callable[[], None]) -> None:
        self.fired = False
        self._memory_dir = memory_dir
        self._closed = False
        self._lock = threading.Lock()
        self._efd: int | None = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            control = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:  # the registration holds what it needs; the control file may be closed
                (memory_dir / "cgroup.event_control").write_text(f"{self._efd} {control}")
            finally:
                os.close(control)
        except OSError as exc:
            log.warning("cannot watch %s for OOM: %s", memory_dir, exc)
            os.close(self._efd)
            self._efd = None
            return
        threading.Thread(target=self._wait, args=(self._efd, on_oom), name="oom-watch",
                         daemon=True).start()  # fmt: skip

    def _wait(self, efd: int, on_oom: Callable[[], None]) -> None:
        oom = False
        while not oom:
            with contextlib.suppress(OSError):
                os.eventfd_read(efd)  # an OOM, the cgroup removed (runtimes do at exit), close()
            if self._closed:
                break
            verdict = self._oom_verdict()
            if verdict is False:  # the cgroup is gone: the sandbox exited
                break
            oom = verdict is True
        with self._lock:
            closed, self._closed = self._closed, True
            self.fired = oom and not closed
            os.close(efd)
            self._efd = None
        if self.fired:
            on_oom()

    def _oom_verdict(self) -> bool | None:
        """True once the cgroup counts an OOM kill, False if it is gone (a sandbox that died of
        it has exited, and its backend reports it as before), None if neither within
        SETTLE_S: the notification comes before the kill it announces is counted."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            state = oom_state(self._memory_dir)
            if state is None:
                return False
            under_oom, kills = state
            if under_oom or kills > 0:
                return True
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def close(self) -> None:
        """Stop watching (before the cgroup goes: its removal also wakes the watch)."""
        with self._lock:
            if self._closed or self._efd is None:
                self._closed = True
                return
            self._closed = True
            os.eventfd_write(self._efd, 1)  # wakes the thread, which closes the eventfd
