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
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class OomWatch:
    """Calls ``on_oom`` (once, from a thread of its own) when the memory cgroup ``memory_dir``
    runs out of memory; :meth:`close` stops watching. A cgroup that cannot be watched is
    logged and left to the backend's own OOM report: this shortens a failure, it is not a
    safeguard."""

    def __init__(self, memory_dir: Path, on_oom: Callable[[], None]) -> None:
        self.fired = False
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
        with contextlib.suppress(OSError):
            os.eventfd_read(efd)  # an OOM, the cgroup removed, or close()
        with self._lock:
            closed, self._closed = self._closed, True
            self.fired = not closed
            os.close(efd)
            self._efd = None
        if not closed:
            on_oom()

    def close(self) -> None:
        """Stop watching (before the cgroup goes: its removal also wakes the watch)."""
        with self._lock:
            if self._closed or self._efd is None:
                self._closed = True
                return
            self._closed = True
            os.eventfd_write(self._efd, 1)  # wakes the thread, which closes the eventfd
