"""The runsc backend against real gVisor (no Docker): hardening, limits, kill, sweep.

Under CI=true a missing runsc or root image fails these tests, never skips them."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.errors import CrucibleError, ImageMissing, RuntimeUnavailable
from crucible_ray.languages import LANGUAGES
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.backend import BackendFailed, Outcome, Program
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.runsc import cgroups
from crucible_ray.sandbox.runsc.backend import RunscBackend
from crucible_ray.sandbox.runsc.sweep import processes_of
from tests.conftest import _unavailable, wait_for

PY = LANGUAGES["python"]
POLICY = SandboxPolicy(backend="runsc")
DEAD_OWNER = "1-0-deadbeef@" + os.uname().nodename  # pid 1 never started at tick 0


@pytest.fixture(scope="module", params=["erofs", "directory"])
def backend(request) -> Iterator[RunscBackend]:
    backend = RunscBackend(rootfs=request.param)
    try:
        backend.check(POLICY)
        backend.image(PY)
    except CrucibleError as exc:
        _unavailable(f"runsc: {exc}")
    yield backend
    backend.close()


@pytest.fixture
def owner_dir(tmp_path) -> Iterator[Path]:
    path = tmp_path / owner_token()
    path.mkdir()
    yield path


def run(backend: RunscBackend, owner_dir: Path, code: str, stdin: bytes = b"",
        timeout_s: float = 10, policy: SandboxPolicy = POLICY) -> Outcome:  # fmt: skip
    sandbox = backend.prepare(PY, policy, backend.image(PY), owner_dir, owner_dir.name)
    try:
        return backend.execute(sandbox, Program(code.encode(), stdin, timeout_s))
    finally:
        backend.destroy(sandbox)


def _argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def test_hello_world_stdin_and_exit_code_and_nothing_left_behind(backend, owner_dir):
    out = run(backend, owner_dir, "import sys\nprint(sys.stdin.read()[::-1])\nsys.exit(3)", b"abc")
    assert (out.stdout, out.stderr, out.exit_code) == ("cba\n", "", 3)
    assert not (out.timed_out or out.killed or out.oom_killed or out.truncated)
    assert backend.live_sandboxes(owner_dir) == set()
    assert ledger.recorded(owner_dir) == set()
    assert list((owner_dir / "bundles").iterdir()) == []
    parent = cgroups.CGROUP_ROOT / "memory" / cgroups.PARENT / cgroups.owner_key(owner_dir.name)
    assert list(parent.glob("*/")) == []
    backend.close()
    assert not parent.exists()


def test_large_stdin_and_errors_on_stderr(backend, owner_dir):
    data = os.urandom(600_000).hex().encode()  # 1.2 MB: more than a pipe holds
    out = run(backend, owner_dir, "import sys\nd = sys.stdin.read()\nprint(len(d))\n1/0", data)
    assert out.stdout == f"{len(data)}\n" and out.exit_code == 1
    assert out.stderr.startswith("Traceback") and "ZeroDivisionError" in out.stderr


def test_timeout_kills_a_busy_loop(backend, owner_dir):
    started = time.monotonic()
    out = run(backend, owner_dir, "while True: pass", timeout_s=1.5)
    assert out.timed_out and out.killed and out.exit_code is None
    assert 1.5 <= out.duration_ms / 1000 < 5 and time.monotonic() - started < 10


def test_cancel_from_another_thread_kills_the_program(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    threading.Timer(0.5, sandbox.kill).start()
    try:
        out = backend.execute(sandbox, Program(b"import time\ntime.sleep(30)", b"", 20))
    finally:
        backend.destroy(sandbox)
    assert out.killed and not out.timed_out and out.exit_code == 137
    assert out.duration_ms < 5000


def test_one_gigabyte_flood_is_capped(backend, owner_dir):
    code = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024): sys.stdout.write(chunk)"
    out = run(backend, owner_dir, code, timeout_s=60)
    assert out.truncated and len(out.stdout) == POLICY.output_limit_bytes
    assert out.exit_code == 0 or out.timed_out


def test_memory_bomb_is_oom_killed(backend, owner_dir):
    code = "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))"
    out = run(backend, owner_dir, code, timeout_s=20)
    assert out.oom_killed and not out.timed_out and out.exit_code != 0


def test_fork_bomb_is_contained_and_the_process_limit_enforced(backend, owner_dir):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    out = run(backend, owner_dir, bomb, timeout_s=5)
    assert out.timed_out or out.oom_killed, out
    code = """
import errno, subprocess
procs = []
try:
    while len(procs) < 500:
        procs.append(subprocess.Popen(["sleep", "5"]))
except OSError as e:
    print("spawned", len(procs), errno.errorcode[e.errno])
"""
    assert run(backend, owner_dir, code).stdout == "spawned 49 EAGAIN\n"  # 50 with the program


def test_no_network_read_only_root_small_noexec_tmp(backend, owner_dir):
    code = """
import errno, os, socket, subprocess
print(sorted(name for _, name in socket.if_nameindex()))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); print("connected")
except OSError as e:
    print("no network")
for path in ("/etc/passwd", "/newfile"):
    try:
        open(path, "a").write("x"); print("writable")
    except OSError as e:
        print(errno.errorcode[e.errno])
written = 0
try:
    with open("/tmp/fill", "wb") as f:
        while written < (64 << 20):
            f.write(b"x" * (1 << 20)); f.flush(); written += 1 << 20
except OSError as e:
    print(written >> 20, errno.errorcode[e.errno])
os.remove("/tmp/fill")
open("/tmp/run.sh", "w").write("#!/bin/sh\\necho ran\\n"); os.chmod("/tmp/run.sh", 0o755)
try:
    subprocess.run(["/tmp/run.sh"]); print("executed")
except PermissionError:
    print("noexec")
"""
    out = run(backend, owner_dir, code, timeout_s=20)
    lines = out.stdout.splitlines()
    assert len(lines) == 6, out
    assert lines[0] == "['lo']" and lines[1] == "no network"
    assert lines[2] in ("EROFS", "EACCES") and lines[3] in ("EROFS", "EACCES")
    mb, err = lines[4].split()
    assert 8 <= int(mb) <= POLICY.tmp_size_mb and err == "ENOSPC"
    assert lines[5] == "noexec"


def test_unprivileged_user_without_capabilities(backend, owner_dir):
    code = """
import os
status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines())
print(os.getuid(), os.getgid(), os.environ.get("HOME"), sorted(os.environ) == sorted(%r))
for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd"):  # gVisor shows no CapAmb
    print(cap, int(status[cap], 16))
import ctypes
print(ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))  # PR_GET_NO_NEW_PRIVS
""" % sorted(PY.env)  # noqa: UP031
    out = run(backend, owner_dir, code)
    lines = out.stdout.splitlines()
    assert lines[0] == "65534 65534 /tmp True", out
    assert lines[1:5] == [f"{cap} 0" for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd")]
    assert lines[5] == "1"


def test_seccomp_profile_denies_namespaces_and_ptrace(backend, owner_dir):
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(libc.unshare(0x10000000), ctypes.get_errno())  # CLONE_NEWUSER
print(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())  # PTRACE_TRACEME
"""
    assert run(backend, owner_dir, code).stdout.splitlines() == ["-1 1", "-1 1"]  # EPERM


def test_limits_are_in_the_sandbox_cgroups_and_the_sandbox_is_in_them(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    try:
        base = cgroups.CGROUP_ROOT
        path = sandbox.cgroup.path.lstrip("/")
        memory = base / "memory" / path
        limits = [(memory / f).read_text().strip()
                  for f in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")]  # fmt: skip
        quota = (base / "cpu" / path / "cpu.cfs_quota_us").read_text().strip()
        pids_max = (base / "pids" / path / "pids.max").read_text().strip()
        members = {int(p) for c in ("memory", "cpu", "pids")
                   for p in (base / c / path / "cgroup.procs").read_text().split()}  # fmt: skip
        ours = processes_of(owner_dir / "runsc")
        sentries = {pid for pid, _ in ours if _argv0(pid) == "runsc-sandbox"}
    finally:
        backend.destroy(sandbox)
    assert limits == [str(100 << 20)] * 2
    assert quota == "50000" and pids_max == str(50 + 1024)
    assert sentries and sentries <= members


def test_erofs_root_runs_goferless_and_directory_root_with_a_gofer(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    try:
        names = [_argv0(pid) for pid, _ in processes_of(owner_dir / "runsc")]
    finally:
        backend.destroy(sandbox)
    assert "runsc-sandbox" in names
    assert ("runsc-gofer" in names) == (backend.rootfs == "directory"), names


def test_sweep_kills_a_dead_owners_sandbox_never_another_gvisor_users(backend, tmp_path):
    other = subprocess.Popen(["runsc", "--network=none", "do",
                              "sleep", "120"], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    dead = tmp_path / "sandboxes" / DEAD_OWNER
    dead.mkdir(parents=True)
    try:
        sandbox = backend.prepare(PY, POLICY, backend.image(PY), dead, DEAD_OWNER)
        children = Path(f"/proc/{other.pid}/task/{other.pid}/children")
        assert wait_for(lambda: bool(children.read_text().split()), 30), "runsc do did not start"
        assert backend.sweep(tmp_path / "sandboxes") == 1
        assert wait_for(lambda: sandbox.process.poll() is not None, 10)
        assert not dead.exists()
        assert not (cgroups.CGROUP_ROOT / "memory" / cgroups.PARENT /
                    cgroups.owner_key(DEAD_OWNER)).exists()  # fmt: skip
        assert backend.sweep(tmp_path / "sandboxes") == 0  # idempotent
        assert other.poll() is None, "the sweep killed another user's gVisor sandbox"
        assert children.read_text().split(), "the sweep killed another user's gVisor sandbox"
    finally:
        os.killpg(other.pid, 9)  # `runsc do` cleans up its own temporary state
        other.wait()


def test_sweep_leaves_a_live_owners_sandbox(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    try:
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
