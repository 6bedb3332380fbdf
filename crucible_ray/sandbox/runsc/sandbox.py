"""One runsc sandbox: its ``runsc run`` process, pipes, bundle and cgroups, and how it dies."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.runsc import cgroups, runsc
from crucible_ray.sandbox.runsc.channel import Channel

REAP_TIMEOUT_S = 10.0


@dataclass
class RunscSandbox:
    sandbox_id: str
    spec: LanguageSpec
    binary: str
    root: Path  # runsc --root: the owner's state directory
    bundle: Path
    work_dir: Path
    process: subprocess.Popen[bytes]
    channel: Channel
    cgroup: cgroups.SandboxCgroup
    policy: SandboxPolicy  # the run's limits (a compiled language boots with its compiler's)
    _killed: threading.Event = field(default_factory=threading.Event)
    _torn_down: threading.Lock = field(default_factory=threading.Lock)
    _gone: bool = False

    @property
    def language(self) -> str:
        return self.spec.name

    @property
    def killed(self) -> bool:
        return self._killed.is_set()

    def kill(self) -> None:
        """Kill the program and everything in the sandbox. Idempotent, from any thread."""
        self._killed.set()
        if self.process.poll() is not None:
            return
        # SIGKILL to the sandbox's init: gVisor then kills its whole pid namespace.
        if not runsc.command(self.binary, self.root, "kill", self.sandbox_id, "KILL"):
            # Not started yet, or runsc is stuck: kill `runsc run`; the sentry follows it
            # (PDEATHSIG in attached mode) and teardown deletes the state.
            with contextlib.suppress(OSError):
                self.process.kill()

    def reap(self) -> None:
        """Wait for ``runsc run`` to exit (it tears the sandbox down), killing it if stuck."""
        try:
            self.process.wait(REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                self.process.kill()
            self.process.wait()

    def teardown(self) -> bool:
        """Remove the sandbox and its host state; True once nothing of it is left."""
        with self._torn_down:
            if self._gone:
                return True
            if self.process.poll() is None:
                self.kill()
            self.reap()
            self.channel.close()
            if self.sandbox_id in runsc.state_ids(self.root):  # runsc run did not clean up
                runsc.command(self.binary, self.root, "delete", "--force", self.sandbox_id)
            clean = self.sandbox_id not in runsc.state_ids(self.root) and self.cgroup.remove()
            if clean:
                shutil.rmtree(self.bundle, ignore_errors=True)
                self._gone = True
            return clean
