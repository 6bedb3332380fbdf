"""The runsc backend's lifecycle against real gVisor: deadline, cancel, sweep, images, checks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.errors import ImageMissing, RuntimeUnavailable
from crucible_ray.languages import LANGUAGES
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.backend import BackendFailed, Program
from crucible_ray.sandbox.runsc import cgroups
from crucible_ray.sandbox.runsc.backend import RunscBackend
from tests.conftest import wait_for
from tests.sandbox.conftest import gvisor_sandbox_started
from tests.sandbox.runsc.conftest import DEAD_OWNER, POLICY, PY, run


def test_cancel_from_another_thread_kills_the_program(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    threading.Timer(0.5, sandbox.kill).start()
    try:
        out = backend.execute(sandbox, Program(b"import time\ntime.sleep(30)", b"", 20))
    finally:
        backend.destroy(sandbox)
    assert out.killed and not out.timed_out and out.exit_code == 137
    assert out.duration_ms < 5000


def test_timeout_kills_a_busy_loop(backend, owner_dir):
    started = time.monotonic()
    out = run(backend, owner_dir, "while True: pass", timeout_s=1.5)
    assert out.timed_out and out.killed and out.exit_code is None
    assert 1.5 <= out.duration_ms / 1000 < 5 and time.monotonic() - started < 10


def test_sweep_kills_a_dead_owners_sandbox_never_another_gvisor_users(
    backend, tmp_path, foreign_gvisor_sandbox
):
    _, other = foreign_gvisor_sandbox
    dead = tmp_path / "sandboxes" / DEAD_OWNER
    dead.mkdir(parents=True)
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), dead, DEAD_OWNER)
    assert backend.orphans(tmp_path / "sandboxes") == 1
    assert sandbox.process.poll() is None  # counting touches nothing
    assert backend.sweep(tmp_path / "sandboxes") == 1
    assert backend.orphans(tmp_path / "sandboxes") == 0
    assert wait_for(lambda: sandbox.process.poll() is not None, 10)
    assert not dead.exists()
    assert not (cgroups.CGROUP_ROOT / "memory" / cgroups.PARENT /
                cgroups.owner_key(DEAD_OWNER)).exists()  # fmt: skip
    assert backend.sweep(tmp_path / "sandboxes") == 0  # idempotent
    assert other.poll() is None, "the sweep killed another user's gVisor sandbox"
    assert gvisor_sandbox_started(other.pid), "the sweep killed another user's gVisor sandbox"


def test_sweep_leaves_a_live_owners_sandbox(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    try:
        assert backend.orphans(owner_dir.parent) == 0
        assert backend.sweep(owner_dir.parent) == 0
        assert sandbox.process.poll() is None
        out = backend.execute(sandbox, Program(b"print(2)", b"", 10))
    finally:
        backend.destroy(sandbox)
    assert out.stdout == "2\n"


def test_a_runsc_that_cannot_start_is_a_backend_failure_that_leaves_nothing(backend, owner_dir):
    broken = RunscBackend(rootfs=backend.rootfs, binary="/nonexistent/runsc")
    with pytest.raises(BackendFailed, match="could not start a sandbox") as raised:
        broken.prepare(PY, POLICY, broken.image(PY), owner_dir, owner_dir.name)
    assert raised.value.transient
    assert ledger.recorded(owner_dir) == set() and list((owner_dir / "bundles").iterdir()) == []
    parent = cgroups.CGROUP_ROOT / "memory" / cgroups.PARENT / cgroups.owner_key(owner_dir.name)
    assert list(parent.glob("*/")) == []
    broken.close()


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("javascript", "console.log(6 * 7)"),
        ("go", 'package main\nimport "fmt"\nfunc main() { fmt.Println(6 * 7) }'),
    ],
)
def test_every_language_runs_through_the_runner(backend, tmp_path, language, code):
    policy = SandboxPolicy(backend="runsc")
    backend.image(LANGUAGES[language])
    with SandboxRunner(policy, backend=backend, state_dir=tmp_path) as runner:
        result = runner.run(EvalRequest(language=language, code=code, timeout_s=30))
    assert (result.status, result.stdout) == ("succeeded", "42\n"), result


def test_missing_root_image_is_refused(tmp_path):
    with pytest.raises(ImageMissing, match="crucible-ray images build --backend runsc"):
        RunscBackend(images_root=tmp_path).image(PY)


def test_check_fails_secure():
    with pytest.raises(RuntimeUnavailable, match="not installed"):
        RunscBackend(binary="runsc-not-here").check(POLICY)
    with pytest.raises(RuntimeUnavailable, match="seccomp profile"):
        RunscBackend().check(SandboxPolicy(seccomp_profile=Path("/nonexistent.json")))
    with pytest.raises(RuntimeUnavailable, match="gVisor only"):
        RunscBackend().check(SandboxPolicy(runtime="runc"))
