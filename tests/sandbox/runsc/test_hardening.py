"""The runsc backend against real gVisor: programs run, and every control of the policy holds."""

from __future__ import annotations

import os

from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.backend import Program
from crucible_ray.sandbox.runsc import cgroups
from crucible_ray.sandbox.runsc.sweep import processes_of
from tests.sandbox.runsc.conftest import POLICY, PY, argv0, run


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
        sentries = {pid for pid, _ in ours if argv0(pid) == "runsc-sandbox"}
    finally:
        backend.destroy(sandbox)
    assert limits == [str(100 << 20)] * 2
    assert quota == "50000" and pids_max == str(50 + 1024)
    assert sentries and sentries <= members


def test_erofs_root_runs_goferless_and_directory_root_with_a_gofer(backend, owner_dir):
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    try:
        names = [argv0(pid) for pid, _ in processes_of(owner_dir / "runsc")]
    finally:
        backend.destroy(sandbox)
    assert "runsc-sandbox" in names
    assert ("runsc-gofer" in names) == (backend.rootfs == "directory"), names


def test_the_program_runs_under_the_cpu_quota(backend, owner_dir):
    # The quota is applied only once the launcher is ready (gVisor boots unthrottled), and
    # always before the code arrives. Seen on the host, in the sandbox's own cpu cgroup: a busy
    # loop that wants a whole CPU is throttled (gVisor's in-sandbox process_time cannot tell:
    # it counts time the host descheduled the program as run).
    code = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 2: pass\n"
    sandbox = backend.prepare(PY, POLICY, backend.image(PY), owner_dir, owner_dir.name)
    cpu = cgroups.CGROUP_ROOT / "cpu" / sandbox.cgroup.path.lstrip("/")
    try:
        quota, period = (int((cpu / f"cpu.cfs_{f}_us").read_text()) for f in ("quota", "period"))
        out = backend.execute(sandbox, Program(code.encode(), b"", 10))
        stat = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines())
    finally:
        backend.destroy(sandbox)
    assert out.exit_code == 0 and not out.timed_out, out
    assert quota == int(POLICY.cpus * period)
    assert int(stat["nr_throttled"]) > 0 and int(stat["throttled_time"]) > 0, stat
