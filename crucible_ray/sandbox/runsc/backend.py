"""RunscBackend: gVisor driven directly, one attached ``runsc run`` per sandbox, no daemon.

The sandbox's stdio is the ``runsc run`` process's pipes. With an EROFS root and no bind
mounts gVisor starts no gofer: one runsc CLI process, the sentry, and nothing else. Each
sandbox has its own bundle (``<work_dir>/bundles/<id>``), its own cgroups (see cgroups.py)
and lives in the owner's private runsc state directory (``<work_dir>/runsc``), which is all the
sweep ever lists.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

from crucible_ray.errors import EngineInterrupted, RuntimeUnavailable, SandboxFault
from crucible_ray.images import records
from crucible_ray.images.local import RootFormat, RootImage, images_dir, verify_image
from crucible_ray.languages import CompileStage, LanguageSpec
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox import ledger, stages
from crucible_ray.sandbox.backend import (
    BackendFailed,
    Outcome,
    Program,
    Sandbox,
    SandboxBackend,
)
from crucible_ray.sandbox.compiling import compile_then_lower
from crucible_ray.sandbox.oom import OomWatch
from crucible_ray.sandbox.runsc import cgroups, runsc
from crucible_ray.sandbox.runsc.bundle import bundle_config
from crucible_ray.sandbox.runsc.channel import Channel
from crucible_ray.sandbox.runsc.sandbox import RunscSandbox
from crucible_ray.sandbox.runsc.session import RunscSession
from crucible_ray.sandbox.runsc.sweep import count_orphans, sweep_owners
from crucible_ray.sandbox.streams import CappedStream, Deadline

log = logging.getLogger(__name__)
BOOT_TIMEOUT_S = 30.0  # a sandbox that is not ready by then is a platform fault
EXIT_GRACE_S = 2.0  # output ended: how long runsc may take to tear the sandbox down
STATE_DIR = "runsc"  # in the owner's work_dir: the --root of its sandboxes


class RunscBackend(SandboxBackend):
    name = "runsc"

    def __init__(self, rootfs: RootFormat = "erofs", binary: str = "runsc",
                 images_root: Path | None = None) -> None:  # fmt: skip
        self.rootfs: RootFormat = rootfs
        self.binary = binary
        self.images_root = images_root
        self._images: dict[str, RootImage] = {}
        self._pending: dict[str, RunscSandbox] = {}  # cleanups to retry (maintain)
        self._owners: set[str] = set()  # whose parent cgroups close() removes
        self._lock = threading.Lock()

    def check(self, policy: SandboxPolicy) -> str:
        if policy.runtime != "runsc":
            raise RuntimeUnavailable("the runsc backend runs gVisor only (runtime runsc)")
        release, line = runsc.version(self.binary)
        if release < runsc.MIN_VERSION:
            raise RuntimeUnavailable(f"runsc is too old ({line}); {runsc.MIN_VERSION} or newer")
        policy.seccomp_json()  # raises when the profile is missing or broken
        reason = cgroups.usable()
        if reason is not None:
            raise RuntimeUnavailable(f"cgroups are not usable: {reason}")
        if policy.runtime_monitoring != "off":
            self.monitoring()
        return "runsc"

    def describe(self) -> dict[str, str]:
        try:
            line = runsc.version(self.binary)[1]
        except RuntimeUnavailable as exc:
            line = str(exc)
        return {"runsc": line, "root images": f"{images_dir(self.images_root)} ({self.rootfs})"}

    def image(self, spec: LanguageSpec) -> str:
        image = verify_image(spec, self.rootfs, self.images_root)
        reference = str(image.erofs if self.rootfs == "erofs" else image.rootfs)
        with self._lock:
            self._images[reference] = image
        return reference

    def image_digest(self, spec: LanguageSpec) -> str:
        return records.runsc_digest(spec, self.images_root)

    def prepare(self, spec: LanguageSpec, policy: SandboxPolicy, image: str, work_dir: Path,
                owner: str) -> RunscSandbox:  # fmt: skip
        with self._lock:
            root_image = self._images.get(image)
            self._owners.add(owner)
        if root_image is None:
            raise RuntimeError("RunscBackend.image() did not return this image")
        sandbox_id = secrets.token_hex(32)
        bundle = work_dir / "bundles" / sandbox_id
        root = work_dir / STATE_DIR
        cgroup = cgroups.SandboxCgroup(owner, sandbox_id)
        erofs = root_image.erofs if root_image.format == "erofs" else None
        anchor = work_dir / "empty-root"  # an EROFS root is mounted over an empty directory
        config = bundle_config(policy, spec, anchor if erofs else root_image.rootfs,
                               erofs_image=erofs, cgroups_path=cgroup.path)  # fmt: skip
        bundle.mkdir(mode=0o700, parents=True)
        root.mkdir(mode=0o700, exist_ok=True)
        anchor.mkdir(mode=0o755, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(config))
        ledger.record(work_dir, sandbox_id)  # before it starts: its processes are ours
        sandbox = None
        monitoring = []
        if policy.runtime_monitoring != "off":  # announced before it can connect
            monitor = self.monitoring()
            monitor.expect(sandbox_id, image=spec.name, compiled=spec.compile is not None)
            monitoring = [f"--pod-init-config={monitor.config_path}"]
        try:
            cgroup.create(config["linux"]["resources"])
            process = subprocess.Popen(
                [*runsc.base_command(self.binary, root), *runsc.SANDBOX_FLAGS, *monitoring,
                 f"--log={bundle / 'runsc.log'}", "run", "--bundle", str(bundle), sandbox_id],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                bufsize=0, cwd=bundle, start_new_session=True,
            )  # fmt: skip
            channel = Channel(process, policy.output_limit_bytes)
            sandbox = RunscSandbox(sandbox_id, spec, self.binary, root, bundle, work_dir,
                                   process, channel, cgroup, policy)  # fmt: skip
            try:
                channel.read_until(time.monotonic() + BOOT_TIMEOUT_S, stderr_bytes=1)
            except Deadline:
                raise SandboxFault(f"sandbox did not boot within {BOOT_TIMEOUT_S:.0f}s") from None
            if channel.stderr.data[:1] != b"R":
                log.warning("runsc sandbox failed to boot: %s", channel.stderr.text()[-500:])
                raise SandboxFault(f"sandbox failed to boot (runsc exit {process.poll()})")
            cgroup.throttle(config["linux"]["resources"])  # before any code can arrive
            channel.stdout = CappedStream(policy.output_limit_bytes)
            channel.stderr = CappedStream(policy.output_limit_bytes + 1)  # + the "G" ack
            return sandbox
        except BaseException as exc:
            if sandbox is not None:
                self.destroy(sandbox)
            else:
                cgroup.remove()
                shutil.rmtree(bundle, ignore_errors=True)
                ledger.forget(work_dir, sandbox_id)
            if isinstance(exc, OSError):  # runsc or the cgroups could not be used
                raise BackendFailed(f"runsc could not start a sandbox ({exc.strerror})") from exc
            raise

    def execute(self, sandbox: Sandbox, program: Program) -> Outcome:
        assert isinstance(sandbox, RunscSandbox)
        channel, process = sandbox.channel, sandbox.process
        stage = sandbox.spec.compile
        oom = OomWatch(sandbox.cgroup.memory_dir, sandbox.kill)  # ends it at the first OOM
        try:
            if stage is None:
                payload = b"%d\n" % len(program.code) + program.code + program.stdin
                compiled = None
            else:
                compiled = self._compile(sandbox, stage, program, oom)
                if isinstance(compiled, Outcome):
                    return compiled  # it ends in the compile stage
                payload = stages.go_line(sandbox.policy) + program.stdin
            started = time.monotonic()
            deadline = started + program.timeout_s
            channel.send(payload)
            timed_out = False
            try:
                channel.read_until(deadline)
                # Output ended; the sandbox exits now. One that closed its output but kept
                # running is still bound by the deadline.
                process.wait(max(deadline - time.monotonic(), 0) + EXIT_GRACE_S)
            except (Deadline, subprocess.TimeoutExpired):
                timed_out = True
                sandbox.kill()
                sandbox.reap()
        finally:
            oom.close()
        finished = time.monotonic()
        security = self.security_summary(sandbox.sandbox_id)
        stderr = channel.stderr
        if stderr.data[:1] != b"G":  # the launcher never received the code: safe to retry
            raise SandboxFault(f"sandbox died before the program started (exit {process.poll()})")
        del stderr.data[:1]
        stderr.total -= 1
        stderr.limit -= 1
        exit_code = process.returncode
        killed = sandbox.killed
        oom_killed = not timed_out and (oom.fired or sandbox.cgroup.oom_kills() > 0)
        if exit_code is not None and exit_code < 0 and not killed:
            # runsc itself died of a signal nobody here sent: an operator or the host.
            raise EngineInterrupted(f"the sandbox was stopped from outside (signal {-exit_code})")
        return Outcome(
            exit_code=None if timed_out else exit_code,
            stdout=channel.stdout.text(),
            stderr=stderr.text(),
            truncated=channel.stdout.truncated or stderr.truncated,
            oom_killed=oom_killed,
            timed_out=timed_out,
            killed=killed,
            duration_ms=(finished - started) * 1000,
            compile=compiled,
            security=security,
        )

    def _compile(self, sandbox: RunscSandbox, stage: CompileStage, program: Program,
                 oom: OomWatch) -> stages.CompileOutcome | Outcome:  # fmt: skip
        """The compile stage, then the run's limits in place; an Outcome if it ends here."""
        channel = sandbox.channel

        def reset_output(limit: int) -> None:
            channel.stdout = CappedStream(limit)
            channel.stderr = CappedStream(limit + 1)  # + the "G" ack

        return compile_then_lower(
            channel, program.code, stage, sandbox.policy,
            oom_fired=lambda: oom.fired or sandbox.cgroup.oom_kills() > 0, kill=sandbox.kill,
            cgroup=sandbox.cgroup.dirs(), pids_headroom=GVISOR_HOST_PIDS_HEADROOM,
            reset_output=reset_output,
        )  # fmt: skip

    def session(self, sandbox: Sandbox, frame_limit: int) -> RunscSession:
        assert isinstance(sandbox, RunscSandbox)
        self.session_monitoring(sandbox.sandbox_id)
        return RunscSession(sandbox, frame_limit)

    def destroy(self, sandbox: Sandbox) -> None:
        assert isinstance(sandbox, RunscSandbox)
        self.stop_monitoring(sandbox.sandbox_id)
        if sandbox.teardown():
            ledger.forget(sandbox.work_dir, sandbox.sandbox_id)
            with self._lock:
                self._pending.pop(sandbox.sandbox_id, None)
        else:
            with self._lock:
                self._pending[sandbox.sandbox_id] = sandbox

    def maintain(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        for sandbox in pending:
            self.destroy(sandbox)

    def sweep(self, work_root: Path, *, everything: bool = False) -> int:
        return sweep_owners(self.binary, work_root, STATE_DIR, everything=everything)

    def orphans(self, work_root: Path) -> int:
        return count_orphans(work_root, STATE_DIR)

    def live_sandboxes(self, work_dir: Path) -> set[str]:
        return runsc.state_ids(work_dir / STATE_DIR)

    def close(self) -> None:
        self.maintain()
        self.stop_monitoring()
        with self._lock:
            owners, self._owners = self._owners, set()
        for owner in owners:
            cgroups.remove_owner(owner)
