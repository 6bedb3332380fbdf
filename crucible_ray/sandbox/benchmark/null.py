"""``null-benchmark-only``: a backend that runs nothing, for measuring the control plane alone.

Every evaluation "runs" at once and ends with exit code 0 and a fixed output, so the CPU a load
costs is the control plane's (ingress, dispatcher, executors, Ray, the store), not gVisor's. It
**isolates nothing and runs no code**: it exists so that benchmarks can drive the real control
plane faster than real sandboxes allow. It fails secure everywhere else:

* ``check`` refuses unless ``CRUCIBLE_BENCHMARK_ONLY=1`` is set in this process (a production
  setting naming it therefore yields ``no_executor``, never unsandboxed runs);
* it is not in :data:`crucible_ray.sandbox.registry.BACKEND_NAMES` or ``PREFERENCE``, so
  ``auto``, ``doctor``, ``sweep`` and the CLI never see it, and the wheel does not ship it;
* the test suite refuses to start with ``CRUCIBLE_BENCHMARK_ONLY`` set (tests/conftest.py);
* its results say ``backend: null-benchmark-only`` and ``runtime: none``.

``CRUCIBLE_NULL_OUTPUT_BYTES`` (default 16) sets the output's size, ``CRUCIBLE_NULL_RUN_MS``
(default 0) how long each "program" takes (a sleep: wall time, no CPU).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from crucible_ray.errors import SandboxUnavailable
from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import (
    BackendFailed,
    Outcome,
    Program,
    Sandbox,
    SandboxBackend,
    SessionChannel,
)

NAME = "null-benchmark-only"
ENABLE = "CRUCIBLE_BENCHMARK_ONLY"


@dataclass
class NullSandbox:
    language: str
    sandbox_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def killed(self) -> bool:
        return self.stop.is_set()

    def kill(self) -> None:
        self.stop.set()


class NullBackend(SandboxBackend):
    """Runs nothing; see the module's docstring. For benchmarks of the control plane only."""

    name: ClassVar[str] = NAME  # type: ignore[assignment]  # not a BackendName, on purpose

    def __init__(self) -> None:
        self.output = "x" * int(os.environ.get("CRUCIBLE_NULL_OUTPUT_BYTES", "16"))
        self.run_s = float(os.environ.get("CRUCIBLE_NULL_RUN_MS", "0")) / 1000
        self._live: dict[Path, set[str]] = {}
        self._lock = threading.Lock()

    def check(self, policy: SandboxPolicy) -> str:
        if os.environ.get(ENABLE) != "1":
            raise SandboxUnavailable(
                f"the {NAME} backend runs no sandbox and is for benchmarks only "
                f"({ENABLE}=1 is not set in this process)"
            )
        return "none"

    def describe(self) -> dict[str, str]:
        return {"backend": NAME, "isolation": "none: benchmarks only"}

    def image(self, spec: LanguageSpec) -> str:
        return f"null:{spec.name}"

    def image_digest(self, spec: LanguageSpec) -> str:
        return "sha256:" + "0" * 64

    def require_signed(self, spec: LanguageSpec) -> None:
        """No image, nothing to verify (``check`` already refused outside benchmarks)."""

    def prepare(self, spec: LanguageSpec, policy: SandboxPolicy, image: str, work_dir: Path,
                owner: str) -> Sandbox:  # fmt: skip
        self.check(policy)  # every sandbox, not only the first: fail secure
        sandbox = NullSandbox(spec.name)
        with self._lock:
            self._live.setdefault(work_dir, set()).add(sandbox.sandbox_id)
        return sandbox

    def execute(self, sandbox: Sandbox, program: Program) -> Outcome:
        assert isinstance(sandbox, NullSandbox)
        started = time.monotonic()
        stopped = sandbox.stop.wait(min(self.run_s, program.timeout_s)) if self.run_s else False
        timed_out = not stopped and self.run_s >= program.timeout_s
        return Outcome(exit_code=None if (stopped or timed_out) else 0,
                       stdout="" if stopped else self.output, stderr="", truncated=False,
                       oom_killed=False, timed_out=timed_out, killed=stopped or timed_out,
                       duration_ms=(time.monotonic() - started) * 1000)  # fmt: skip

    def session(self, sandbox: Sandbox, frame_limit: int) -> SessionChannel:
        raise BackendFailed(f"the {NAME} backend runs no judging sessions", transient=False)

    def destroy(self, sandbox: Sandbox) -> None:
        with self._lock:
            for live in self._live.values():
                live.discard(sandbox.sandbox_id)

    def sweep(self, work_root: Path, *, everything: bool = False) -> int:
        return 0  # nothing outlives its process

    def orphans(self, work_root: Path) -> int:
        return 0

    def live_sandboxes(self, work_dir: Path) -> set[str]:
        with self._lock:
            return set(self._live.get(work_dir, ()))
