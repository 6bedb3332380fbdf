"""SandboxRunner: the sandbox layer's public entry point. One program in, one EvalResult out."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Protocol, Self

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from crucible_ray.errors import (
    CrucibleError,
    EngineInterrupted,
    SandboxFault,
    SandboxStartFailed,
)
from crucible_ray.languages import IMAGES, LanguageSpec
from crucible_ray.models import (
    CompileResult,
    EvalRequest,
    EvalResult,
    EvalStatus,
    SecuritySummary,
    new_eval_id,
    utcnow,
)
from crucible_ray.paths import sandboxes_dir
from crucible_ray.policy import SandboxPolicy
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.sandbox.backend import BackendFailed, Outcome, Program, Sandbox, SandboxBackend
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.pool import WarmPool
from crucible_ray.sandbox.registry import backend_for

log = logging.getLogger(__name__)

ATTEMPTS = 2  # a sandbox that breaks before the code starts is replaced once
PREPARE_ATTEMPTS = 3  # transient engine errors while starting one (~0.75 s of backoff)


class SandboxObserver(Protocol):
    """Told about sandbox boots and waits (the executor actor reports them as metrics)."""

    def sandbox_booted(self, language: str, seconds: float) -> None: ...

    def sandbox_acquired(self, language: str, warm: bool, seconds: float) -> None: ...


class _Unobserved:
    def sandbox_booted(self, language: str, seconds: float) -> None:
        pass

    def sandbox_acquired(self, language: str, warm: bool, seconds: float) -> None:
        pass


class SandboxRunner:
    """Runs untrusted programs, each in a fresh hardened sandbox of this machine's backend
    (``backend``, or the one ``policy.backend`` names).

    ``warm`` boots that many sandboxes per image ahead of demand (an int for every image, or a
    mapping by image name: a language's default image is named after it); ``boot_workers``
    bounds how many boot at once (each boot costs ~0.3 CPU-seconds under gVisor, so more than
    the cores only adds contention). Thread-safe: ``run`` may be called from many threads.
    """

    def __init__(
        self,
        policy: SandboxPolicy | None = None,
        *,
        backend: SandboxBackend | None = None,
        state_dir: Path | None = None,
        warm: int | Mapping[str, int] = 0,
        boot_workers: int = 2,
        observer: SandboxObserver | None = None,
    ) -> None:
        self.policy = policy or SandboxPolicy()
        self.observer: SandboxObserver = observer or _Unobserved()
        self.backend = backend or backend_for(self.policy)
        self.owner = owner_token()
        self.work_dir = sandboxes_dir(state_dir) / self.owner  # default: CRUCIBLE_STATE_DIR
        self._warm = dict.fromkeys(IMAGES, warm) if isinstance(warm, int) else dict(warm)
        self._pools: dict[str, WarmPool] = {}
        self._images: dict[str, str] = {}
        self._runtime: str | None = None  # what check() found, recorded in results
        self._refill = ThreadPoolExecutor(boot_workers, thread_name_prefix="sandbox-warm")
        self._active: dict[str, Sandbox | None] = {}
        self._cancelled: set[str] = set()
        self._security: dict[str, SecuritySummary] = {}  # sandbox_for's, until collected
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Check every safeguard (fail secure), sweep orphans, boot the warm pools."""
        self._runtime = self.backend.check(self.policy)
        self.backend.sweep(self.work_dir.parent)
        self.work_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        for language, size in self._warm.items():
            if size > 0:
                spec = IMAGES[language]
                self._pools[language] = WarmPool(
                    size, partial(self._prepare, spec), self.backend.destroy, self._refill
                )
        return self

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._refill.shutdown(wait=True, cancel_futures=True)
        for pool in self._pools.values():
            pool.close()  # sandboxes that finished booting during shutdown
        with self._lock:
            running = [s for s in self._active.values() if s is not None]
        for sandbox in running:
            sandbox.kill()
        self.backend.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # evaluations -----------------------------------------------------------------------------

    def run(self, request: EvalRequest, eval_id: str | None = None) -> EvalResult:
        """Run one program and return its result.

        Raises InvalidRequest for a bad request, SandboxUnavailable when this machine cannot
        start sandboxes safely, and SandboxStartFailed when one sandbox could not be started
        although the machine can (nothing ran in either case; the latter may be retried). Once
        the program may have started, every failure is an EvalResult (status ``error`` with an
        ``error_code`` when the platform, not the program, failed).
        """
        if self._runtime is None:
            raise RuntimeError("SandboxRunner.start() was not called")
        eval_id = eval_id or new_eval_id()
        spec, _, timeout_s = self.policy.resolve(request)
        self.backend.maintain()
        result = EvalResult(id=eval_id, status=EvalStatus.RUNNING, language=spec.language,
                            image=spec.name, runtime=self._runtime,
                            backend=self.backend.name)  # fmt: skip
        program = Program(request.code.encode(), request.stdin.encode(), timeout_s)
        with self._lock:
            self._active[eval_id] = None
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    outcome = self._attempt(eval_id, spec, program)
                except SandboxFault as exc:
                    log.warning("sandbox fault (attempt %d) for %s: %s", attempt, eval_id, exc)
                    if attempt == ATTEMPTS:
                        return _finish(result, EvalStatus.ERROR, Reason.SANDBOX_FAULT)
                    continue
                except _Cancelled:
                    return _finish(result, EvalStatus.CANCELLED)
                except EngineInterrupted as exc:
                    log.warning("evaluation %s interrupted: %s", eval_id, exc)
                    return _finish(result, EvalStatus.ERROR, Reason.ENGINE_INTERRUPTED)
                except BackendFailed as exc:
                    log.warning("backend failed during evaluation %s: %s", eval_id, exc)
                    return _finish(result, EvalStatus.ERROR, Reason.ENGINE_FAILED)
                return _from_outcome(result, outcome, spec, cancelled=self._was_cancelled(eval_id))
            raise AssertionError("unreachable")
        finally:
            with self._lock:
                self._active.pop(eval_id, None)
                self._cancelled.discard(eval_id)

    @contextlib.contextmanager
    def sandbox_for(self, spec: LanguageSpec, job_id: str) -> Iterator[Sandbox]:
        """A fresh sandbox of ``spec`` (booted now: a driver's spec has no warm pool) for a
        session of many processes, killed by ``cancel(job_id)`` and destroyed on exit. Raises
        SandboxStartFailed or SandboxUnavailable as :meth:`run` does."""
        if self._runtime is None:
            raise RuntimeError("SandboxRunner.start() was not called")
        self.backend.maintain()
        with self._lock:
            self._active[job_id] = None
        sandbox = None
        try:
            sandbox = self._prepare(spec)
            with self._lock:
                cancelled = job_id in self._cancelled
                self._active[job_id] = sandbox
            if cancelled:
                sandbox.kill()
            yield sandbox
        finally:
            if sandbox is not None:
                self._keep_security(job_id, sandbox)
                self.backend.destroy(sandbox)
            with self._lock:
                self._active.pop(job_id, None)

    def _keep_security(self, job_id: str, sandbox: Sandbox) -> None:
        """The session's sandbox is ending (its driver's input closed): what monitoring saw,
        for :meth:`security_of`."""
        summary = self.backend.security_summary(sandbox.sandbox_id)
        if summary is None:
            return
        with self._lock:
            earlier = self._security.get(job_id)
            self._security[job_id] = summary if earlier is None else earlier.merged(summary)

    def security_of(self, job_id: str) -> SecuritySummary | None:
        """What runtime monitoring saw in the sandboxes of ``sandbox_for(job_id)`` (once)."""
        with self._lock:
            return self._security.pop(job_id, None)

    def was_cancelled(self, job_id: str) -> bool:
        """Was ``cancel(job_id)`` called while the job was active (until it is forgotten)?"""
        with self._lock:
            return job_id in self._cancelled

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.discard(job_id)

    @property
    def runtime(self) -> str | None:
        return self._runtime

    def cancel(self, eval_id: str) -> bool:
        """Cancel a running evaluation: its sandbox is killed and it ends as ``cancelled``."""
        with self._lock:
            if eval_id not in self._active:
                return False
            self._cancelled.add(eval_id)
            sandbox = self._active[eval_id]
        if sandbox is not None:
            sandbox.kill()
        return True

    def warm_ready(self) -> dict[str, int]:
        return {language: pool.ready for language, pool in self._pools.items()}

    # internals -------------------------------------------------------------------------------

    def _prepare(self, spec: LanguageSpec) -> Sandbox:
        image = self._images.get(spec.name)
        if image is None:
            image = self.backend.image(spec)
            if self.policy.require_signed_images:  # once per image and runner
                self.backend.require_signed(spec)
            self._images[spec.name] = image
        policy = self.policy.for_language(spec.policy_overrides)
        started = time.monotonic()
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(PREPARE_ATTEMPTS),
                wait=wait_exponential(multiplier=0.25, max=2.0),
                retry=retry_if_exception(_transient),
                reraise=True,
            ):
                with attempt:
                    sandbox = self.backend.prepare(spec, policy, image, self.work_dir, self.owner)
        except BackendFailed as exc:
            # Still failing: is it this machine (refuse everything) or this sandbox only?
            self.backend.check(self.policy)  # raises if the node cannot
            raise SandboxStartFailed(f"cannot start a sandbox: {exc}") from exc
        self.observer.sandbox_booted(spec.name, time.monotonic() - started)
        return sandbox

    def _attempt(self, eval_id: str, spec: LanguageSpec, program: Program) -> Outcome:
        pool = self._pools.get(spec.name)
        started = time.monotonic()
        warm = pool.take() if pool else None
        sandbox = warm or self._prepare(spec)
        self.observer.sandbox_acquired(spec.name, warm is not None, time.monotonic() - started)
        try:
            with self._lock:
                cancelled = eval_id in self._cancelled
                self._active[eval_id] = sandbox
            if cancelled:
                raise _Cancelled
            return self.backend.execute(sandbox, program)
        finally:
            self.backend.destroy(sandbox)

    def _was_cancelled(self, eval_id: str) -> bool:
        with self._lock:
            return eval_id in self._cancelled


def _transient(exc: BaseException) -> bool:
    """Backend failures worth another try: the daemon or its connection, not a refusal."""
    return isinstance(exc, BackendFailed) and exc.transient


class _Cancelled(CrucibleError):
    pass


def _finish(result: EvalResult, status: EvalStatus, reason: Reason | None = None) -> EvalResult:
    update = {"status": status, "finished_at": utcnow(), **error_fields(reason)}
    return result.model_copy(update=update)


def _from_outcome(
    result: EvalResult, outcome: Outcome, spec: LanguageSpec, *, cancelled: bool
) -> EvalResult:
    compiled = outcome.compile
    if cancelled:
        status = EvalStatus.CANCELLED
    elif compiled is not None and not compiled.succeeded:
        status = EvalStatus.COMPILE_ERROR
    elif outcome.timed_out:
        status = EvalStatus.TIMED_OUT
    elif outcome.exit_code == 0:
        status = EvalStatus.SUCCEEDED
    else:
        status = EvalStatus.FAILED
    compile_result = None
    if compiled is not None:
        compile_result = CompileResult(
            status=compiled.status,
            exit_code=compiled.exit_code,
            output=compiled.output,
            truncated=compiled.truncated,
            duration_ms=round(compiled.duration_ms, 3),
        )
    return result.model_copy(
        update={
            "status": status,
            "exit_code": outcome.exit_code,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "truncated": outcome.truncated,
            # Killed by the memory cgroup, or stopped by its runtime at the heap limit.
            "oom_killed": outcome.oom_killed
            or spec.ran_out_of_heap(outcome.exit_code, outcome.stderr),
            "duration_ms": round(outcome.duration_ms, 3),
            "compile": compile_result,
            "security": outcome.security,
            "finished_at": utcnow(),
        }
    )
