"""The sandbox layer's one seam: what a sandbox backend does, and nothing else.

A backend starts fresh, hardened sandboxes on this machine and runs programs in them. Two ship:
``docker`` (Docker with the gVisor runtime, or runc) and ``runsc`` (gVisor driven directly from
an OCI bundle, no daemon). Everything above this module (the runner, warm pools, result mapping,
executor actors, the dispatcher) is backend-neutral and never imports ``docker`` or runs
``runsc``; :data:`BACKENDS` is the registry that names them.

Lifecycle of one sandbox, each step a method below::

    check(policy)        once: can this host enforce the policy? (fail secure: raise, never weaken)
    image(spec)          once per language: the root image exists and is intact
    prepare(...)         boot ahead: the sandbox is up and its launcher waits for a program
    execute(sandbox, p)  run the program in it (the handle outlives the run: see execute)
    destroy(sandbox)     always, exactly once (kill() may come first, from any thread)
    sweep(work_root)     now and then: remove what dead owners left behind

Launcher protocol (every image's launcher, every backend): once booted and waiting, the launcher
writes ``R`` to stderr. The host then writes ``<length of the code in bytes>\\n``, the code, and
the program's stdin, then closes stdin. The launcher writes ``G`` to stderr once it holds the
code, and runs it with the rest of stdin as its stdin. A sandbox whose stderr does not start
with ``G`` never ran the code, so running the evaluation again elsewhere is safe.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from crucible_ray.errors import CrucibleError, RuntimeUnavailable
from crucible_ray.languages import LanguageSpec
from crucible_ray.models import SecuritySummary
from crucible_ray.policy import BackendName, SandboxPolicy
from crucible_ray.sandbox.stages import CompileOutcome

if TYPE_CHECKING:
    from crucible_ray.security.receiver import Monitor

_MONITOR_LOCK = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """What happened to one program in a sandbox, before it becomes an EvalResult."""

    exit_code: int | None
    stdout: str
    stderr: str
    truncated: bool
    oom_killed: bool
    timed_out: bool
    killed: bool  # killed from the host (deadline or cancellation)
    duration_ms: float
    compile: CompileOutcome | None = None  # a compiled language's compile stage
    security: SecuritySummary | None = None  # runtime monitoring's view (None: not monitored)

    @classmethod
    def ended_in_compile(cls, compiled: CompileOutcome, *, oom_killed: bool = False) -> Outcome:
        """An evaluation that never got past its compile stage (``oom_killed``: it compiled,
        but the built program does not fit in the run's memory)."""
        return cls(exit_code=None, stdout="", stderr="", truncated=False, oom_killed=oom_killed,
                   timed_out=False, killed=False, duration_ms=0.0, compile=compiled)  # fmt: skip


@dataclass(frozen=True)
class Program:
    """One program to run in a prepared sandbox: its source and its stdin."""

    code: bytes
    stdin: bytes
    timeout_s: float


class Sandbox(Protocol):
    """A booted sandbox, owned by the backend that prepared it. Never reused across
    evaluations: once destroyed it is gone."""

    @property
    def sandbox_id(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def killed(self) -> bool:
        """Was it killed from the host (deadline, cancellation, the OOM watch)?"""

    def kill(self) -> None:
        """Kill everything in the sandbox now. Idempotent, safe from any thread; the program's
        outcome then says ``killed``."""


class SessionChannel(Protocol):
    """A prepared sandbox's raw stdio, for a driver in it that runs many processes (the judge:
    one compile, then a fresh process per test). What the protocol on it means is the
    driver's business (:mod:`crucible_ray.judge.driver`); this is only the wire, with the hooks
    the compile stage needs (:func:`crucible_ray.sandbox.compiling.compile_then_lower`)."""

    pids_headroom: int  # the runtime's own host threads counted in the sandbox's pids cgroup

    def send_code(self, payload: bytes) -> None:
        """Write ``payload`` to the sandbox's stdin and keep stdin open."""

    def end_input(self) -> None:
        """Close the sandbox's stdin (the driver then exits)."""

    def read_stderr(self, size: int, deadline: float) -> bytes:
        """Read until stderr holds ``size`` bytes or the sandbox's output ends; all it holds.
        Raises Deadline."""

    def read_stdout(self, size: int, deadline: float) -> bytes:
        """Take the next ``size`` bytes of stdout (fewer only when the output ended). Raises
        Deadline."""

    def reset_output(self, limit: int) -> None:
        """Forget what stderr holds; capture at most ``limit`` bytes of it from now on."""

    def oom_fired(self) -> bool:
        """Did the sandbox's memory cgroup kill something for lack of memory?"""

    def cgroup(self) -> dict[str, Path]:
        """The sandbox's memory, cpu and pids cgroup directories."""

    def close(self) -> None:
        """Stop watching the sandbox (it stays up until destroyed)."""


class BackendFailed(CrucibleError):
    """The backend's own machinery failed (engine call, runsc invocation, lost connection).

    ``transient``: worth another attempt (a restarting daemon, a dropped connection), as
    opposed to a refusal that would repeat (an invalid configuration).
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class SandboxBackend(ABC):
    """One way of running sandboxes on this host. Thread-safe: the runner calls ``prepare``,
    ``execute`` and ``destroy`` from many threads at once."""

    name: ClassVar[BackendName]
    images_root: Path | None = None  # the state directory its images' records are under
    _monitor: Monitor | None = None

    @abstractmethod
    def check(self, policy: SandboxPolicy) -> str:
        """Fail secure: raise :class:`~crucible_ray.errors.SandboxUnavailable` (with the reason)
        unless this host can enforce every control of ``policy``. Returns the runtime that will
        run sandboxes, as recorded in results (``runsc`` or ``runc``)."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """What ``doctor`` shows: versions and locations this backend uses."""

    @abstractmethod
    def image(self, spec: LanguageSpec) -> str:
        """The root image for ``spec``, verified; raises ImageMissing when it is not built or
        not intact. Returns its reference (an image tag, or a content-addressed path)."""

    @abstractmethod
    def image_digest(self, spec: LanguageSpec) -> str:
        """The content digest of ``spec``'s image, which its signature names."""

    def monitoring(self) -> Monitor:
        """The receiver of this backend's sandboxes' trace points (gVisor runtime monitoring),
        started once. Fail secure: RuntimeUnavailable when it cannot listen."""
        from crucible_ray.security.receiver import Monitor

        with _MONITOR_LOCK:
            if self._monitor is None or not self._monitor.alive:
                try:
                    self._monitor = Monitor()
                except OSError as exc:
                    raise RuntimeUnavailable(
                        f"runtime monitoring cannot listen ({exc.strerror or exc})"
                    ) from None
            return self._monitor

    def security_summary(self, sandbox_id: str) -> SecuritySummary | None:
        """What monitoring saw of a sandbox whose program has ended (None: not monitored)."""
        return self._monitor.finish(sandbox_id) if self._monitor is not None else None

    def session_monitoring(self, sandbox_id: str) -> None:
        """The sandbox runs a judging session (many processes, started by the judge driver)."""
        if self._monitor is not None:
            self._monitor.session_started(sandbox_id)

    def stop_monitoring(self, sandbox_id: str | None = None) -> None:
        """Forget one sandbox (destroyed), or with no id close the receiver (backend closed)."""
        with _MONITOR_LOCK:
            monitor = self._monitor
            if sandbox_id is None:
                self._monitor = None
        if monitor is not None and sandbox_id is not None:
            monitor.forget(sandbox_id)
        elif monitor is not None:
            monitor.close()

    def require_signed(self, spec: LanguageSpec) -> None:
        """Fail secure: ImageUntrusted unless a trusted key signed this image and its SBOM."""
        from crucible_ray.images import records  # the image layer, not needed by the seam

        records.require_signed(self.name, spec, self.image_digest(spec), self.images_root)

    @abstractmethod
    def prepare(self, spec: LanguageSpec, policy: SandboxPolicy, image: str, work_dir: Path,
                owner: str) -> Sandbox:  # fmt: skip
        """Boot a sandbox and wait until its launcher is ready for a program.

        Raises SandboxFault when the sandbox broke while booting (nothing ran), BackendFailed
        when the backend itself failed. ``work_dir`` is this owner's private directory (host
        state of its sandboxes, and the ledger the orphan sweep reads).
        """

    @abstractmethod
    def execute(self, sandbox: Sandbox, program: Program) -> Outcome:
        """Run ``program`` in ``sandbox`` under its deadline, output read with the policy's caps.

        Raises SandboxFault when the sandbox died before the program started (safe to retry),
        EngineInterrupted when something outside stopped it mid-run. Does not destroy it: the
        sandbox outlives its first program, so a judging session can run more processes in it
        (compile once, run each test) before ``destroy``.
        """

    @abstractmethod
    def session(self, sandbox: Sandbox, frame_limit: int) -> SessionChannel:
        """The raw stdio of ``sandbox`` (prepared from a driver's spec instead of a launcher),
        stdout buffered up to ``frame_limit`` bytes at a time. Closed by the caller; the
        sandbox is destroyed as usual."""

    @abstractmethod
    def destroy(self, sandbox: Sandbox) -> None:
        """Remove the sandbox and everything of it on the host. Never raises for a sandbox that
        is already gone; what cannot be removed now is retried by :meth:`maintain` or the sweep."""

    @abstractmethod
    def sweep(self, work_root: Path, *, everything: bool = False) -> int:
        """Remove sandboxes whose owner (a directory under ``work_root``) is dead; with
        ``everything``, all of this backend's sandboxes of any owner under ``work_root``.
        Touches only what this backend provably created. Returns how many were removed."""

    @abstractmethod
    def orphans(self, work_root: Path) -> int:
        """How many sandboxes (or their leftover host processes) :meth:`sweep` would remove now:
        what doctor reports. Kills and removes nothing."""

    @abstractmethod
    def live_sandboxes(self, work_dir: Path) -> set[str]:
        """Ids of the sandboxes of the owner of ``work_dir`` that exist on this host now
        (booting, waiting or running): what doctor reports and what tests watch."""

    def maintain(self) -> None:  # noqa: B027 - most backends have nothing deferred
        """Retry cleanups that failed earlier (e.g. the engine was restarting)."""

    def close(self) -> None:  # noqa: B027
        """Release connections and helpers; sandboxes are destroyed by their owner first."""
