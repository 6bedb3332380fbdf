"""Hostile programs in real gVisor sandboxes, on every backend (the conformance suite): each
attack is contained and reported."""

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from crucible_ray import EvalRequest

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def run(runner, code: str, **fields):
    return runner.run(EvalRequest(code=textwrap.dedent(code), **fields))


FLOOD_SCRIPT = """
import json, resource, sys
from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner
megabytes, backend = int(sys.argv[1]), sys.argv[2]
code = ("import sys\\nb = b'x' * (1 << 20)\\nfor _ in range(%d):\\n"
        "    sys.stdout.buffer.write(b)\\n    sys.stderr.buffer.write(b[:4096])\\n" % megabytes)
with SandboxRunner(SandboxPolicy(backend=backend)) as runner:
    r = runner.run(EvalRequest(code=code, timeout_s=30))
print(json.dumps({"status": r.status, "truncated": r.truncated, "out": len(r.stdout),
                  "err": len(r.stderr),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _flood(megabytes: int, backend: str) -> dict:
    # A fresh interpreter each time, so its peak RSS measures this evaluation alone.
    out = subprocess.run(
        [sys.executable, "-c", FLOOD_SCRIPT, str(megabytes), backend],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_one_gigabyte_flood_is_capped_while_reading_and_host_memory_stays_flat(checked_backend):
    baseline = _flood(1, checked_backend)  # 1 MiB: the same process, nothing to cap
    report = _flood(1024, checked_backend)  # 1 GiB through the same path
    assert report["truncated"] and report["out"] == 1 << 20 and report["err"] == 1 << 20
    assert report["status"] in ("succeeded", "timed_out")
    # Buffering the flood would cost over 1,000 MB; capping while reading keeps it near flat.
    assert report["peak_mb"] - baseline["peak_mb"] < 256, (baseline, report)


def test_invalid_utf8_output_is_replaced(runner):
    result = run(runner, "import sys\nsys.stdout.buffer.write(b'a\\xff\\xfeb\\n')")
    assert result.status == "succeeded" and result.stdout == "a\ufffd\ufffdb\n"


def test_timeout_kills_children_daemons_threads_and_sigterm_ignorers(make_runner):
    code = """
        import os, signal, subprocess, threading, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do :; done"])
        if os.fork() == 0:          # double-forked daemon
            os.setsid()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True: time.sleep(1)
            os._exit(0)
        def spin():
            while True:
                pass
        threading.Thread(target=spin, daemon=True).start()
        print("started", flush=True)
        while True: time.sleep(1)
    """
    runner = make_runner()
    ids: list[str] = []
    watcher = threading.Thread(target=lambda: ids.extend(_sandbox_ids(runner)))
    started = time.monotonic()
    watcher.start()
    result = run(runner, code, timeout_s=3)
    elapsed = time.monotonic() - started
    watcher.join()
    assert result.status == "timed_out" and result.exit_code is None
    assert result.stdout == "started\n"
    assert elapsed < 15, elapsed  # killed at the deadline, not when the program chose to stop
    (sandbox_id,) = ids
    # Every host process of that sandbox (gVisor's sentry and gofer) is gone with it.
    leftover = subprocess.run(["pgrep", "-f", sandbox_id], capture_output=True, text=True)
    assert leftover.stdout == ""
    assert runner.backend.live_sandboxes(runner.work_dir) == set()


def _sandbox_ids(runner) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = runner.backend.live_sandboxes(runner.work_dir)
        if found:
            return sorted(found)
        time.sleep(0.05)
    return []


def _host_stays_responsive(action):
    """Run ``action`` while the host keeps doing small jobs; return the slowest host job."""
    worst = 0.0
    done = threading.Event()

    def probe():
        nonlocal worst
        while not done.is_set():
            t = time.monotonic()
            subprocess.run(["true"], check=True)
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.1)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        result = action()
    finally:
        done.set()
        thread.join()
    return result, worst


def test_fork_bomb_is_contained(runner):
    code = """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    result, worst = _host_stays_responsive(lambda: run(runner, code, timeout_s=5))
    assert result.status in ("failed", "timed_out")
    assert worst < 5, worst
    assert run(runner, "print('alive')").stdout == "alive\n"


def test_process_limit_is_enforced_inside_the_sandbox(runner):
    code = """
        import errno, subprocess
        procs = []
        try:
            while len(procs) < 500:
                procs.append(subprocess.Popen(["sleep", "5"]))
        except OSError as e:
            print("spawned", len(procs), errno.errorcode[e.errno])
    """
    result = run(runner, code, timeout_s=10)
    assert result.stdout == "spawned 49 EAGAIN\n", result  # 50 with the program itself


def test_thread_bomb_is_contained(runner):
    code = """
        import threading, time
        threads = []
        try:
            while len(threads) < 10000:
                t = threading.Thread(target=time.sleep, args=(5,), daemon=True)
                t.start(); threads.append(t)
        except RuntimeError:
            pass
        print(len(threads))
    """
    result = run(runner, code, timeout_s=10)
    assert result.status == "succeeded", result
    assert int(result.stdout) < 50


def test_memory_bomb_is_oom_killed(runner):
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))"
    result, worst = _host_stays_responsive(lambda: run(runner, code, timeout_s=20))
    assert result.status == "failed" and result.oom_killed, result
    assert worst < 5, worst


MEMORY_BOMBS = {
    # V8's heap would otherwise crawl through garbage collections up to the wall clock.
    "javascript": "const chunks = [];\nfor (;;) chunks.push(new Array(1 << 20).fill(1.5));",
    "go": 'package main\nimport "fmt"\nfunc main() {\n\tvar chunks [][]byte\n'
    "\tfor {\n\t\tb := make([]byte, 8<<20)\n\t\tfor i := range b { b[i] = 1 }\n"
    "\t\tchunks = append(chunks, b)\n\t\tif len(chunks) < 0 { fmt.Println() }\n\t}\n}\n",
}


@pytest.mark.parametrize("language", sorted(MEMORY_BOMBS))
def test_every_language_fails_fast_and_clearly_at_its_memory_limit(runner, language):
    """Exhausting memory ends the program as out of memory long before its deadline: the heap
    of the language's runtime is sized to the sandbox's limit."""
    result = runner.run(EvalRequest(code=MEMORY_BOMBS[language], language=language, timeout_s=30))
    assert result.status == "failed" and result.oom_killed, result


def test_disk_fill_is_bounded_and_root_is_read_only(runner):
    code = """
        import errno, os
        def fill(path):
            written = 0
            try:
                with open(path, "wb") as f:
                    while written < (512 << 20):
                        f.write(b"x" * (1 << 20)); f.flush(); written += 1 << 20
            except OSError as e:
                return written >> 20, errno.errorcode[e.errno]
            return written >> 20, "no limit"
        print(fill("/tmp/fill"))
        os.remove("/tmp/fill")
        print(fill("/dev/shm/fill"))
        for path in ("/fill", "/opt/crucible/fill", "/etc/passwd"):
            try:
                open(path, "a").write("x")
                print(path, "WRITABLE")
            except OSError as e:
                print(path, "denied" if e.errno in (errno.EROFS, errno.EACCES) else e)
        mounts = {line.split()[1]: line.split()[3] for line in open("/proc/mounts")}
        print(mounts["/"].split(",")[0], sorted(mounts))
    """
    lines = run(runner, code, timeout_s=20).stdout.splitlines()
    tmp_mb, tmp_err = eval(lines[0])
    shm_mb, shm_err = eval(lines[1])
    assert tmp_mb <= 16 and tmp_err == "ENOSPC"
    assert shm_mb <= 4 and shm_err == "ENOSPC"
    assert lines[2:5] == ["/fill denied", "/opt/crucible/fill denied", "/etc/passwd denied"]
    root, mounted = lines[5].split(" ", 1)
    assert root == "ro"
    # Nothing of the host is mounted in: the root, /tmp, the kernel's own filesystems, and on
    # Docker the hostname file the engine always writes.
    kernel = ("/dev", "/proc", "/sys")
    extra = [m for m in eval(mounted) if m not in ("/", "/tmp", "/etc/hostname")
             and not m.startswith(kernel)]  # fmt: skip
    assert extra == [], mounted


def test_network_is_absent(runner):
    code = """
        import errno, socket
        print(sorted(name for _, name in socket.if_nameindex()))
        def attempt(fn):
            try:
                fn(); return "CONNECTED"
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e))
        # 192.0.2.1 is TEST-NET-1 (never routed); with no interface no packet can leave anyway.
        tcp = socket.socket(); tcp.settimeout(3)
        print("tcp", attempt(lambda: tcp.connect(("192.0.2.1", 80))))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        print("udp", attempt(lambda: udp.sendto(b"x", ("192.0.2.1", 53))))
        print("dns", attempt(lambda: socket.getaddrinfo("example.com", 80)))
        print("raw", attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)))
    """
    lines = run(runner, code, timeout_s=20).stdout.splitlines()
    assert lines[0] == "['lo']"
    unreachable = ("ENETUNREACH", "EHOSTUNREACH")
    assert lines[1].split()[1] in unreachable and lines[2].split()[1] in unreachable, lines
    assert lines[3].startswith("dns") and "CONNECTED" not in lines[3]
    assert lines[4] == "raw EPERM"


def test_privilege_escalation_fails(runner):
    code = """
        import errno, os, subprocess
        def attempt(name, fn):
            try:
                fn(); print(name, "ALLOWED")
            except OSError as e:
                print(name, errno.errorcode[e.errno])
        attempt("setuid0", lambda: os.setuid(0))
        attempt("chown", lambda: os.chown("/tmp", 0, 0))
        attempt("proc_sys", lambda: open("/proc/sys/kernel/hostname", "w").write("x"))
        attempt("cgroup", lambda: open("/sys/fs/cgroup/pids/pids.max", "w").write("max"))
        setuid = subprocess.run("find / -xdev -perm /6000 -type f", shell=True,
                                capture_output=True, text=True).stdout.split()
        print("setuid_files", len(setuid))
        print("docker_sock", os.path.exists("/var/run/docker.sock"))
    """
    lines = run(runner, code, timeout_s=20).stdout.splitlines()
    assert lines[0] == "setuid0 EPERM" and lines[1] == "chown EPERM"
    assert not lines[2].endswith("ALLOWED") and not lines[3].endswith("ALLOWED")
    assert lines[4:] == ["setuid_files 0", "docker_sock False"]


def test_host_files_are_not_visible(runner, tmp_path):
    marker = Path("/etc/crucible-host-marker")
    marker.write_text("host-secret")
    try:
        code = """
            import os, subprocess
            print(os.path.exists("/etc/crucible-host-marker"))
            out = subprocess.run("grep -rls host-secret /etc /root /home /var 2>/dev/null",
                                 shell=True, capture_output=True, text=True).stdout
            print(repr(out))
            print(open("/etc/hostname").read().strip())
        """
        lines = run(runner, code, timeout_s=20).stdout.splitlines()
    finally:
        marker.unlink()
    assert lines == ["False", "''", "sandbox"]


SECCOMP_PROBE = """
    import ctypes, errno, os
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {
        "ptrace": (101, 0, 0, 0, 0),
        "mount": (165, b"none", b"/tmp", b"tmpfs", 0, 0),
        "unshare_user": (272, 0x10000000),
        "setns": (308, 0, 0),
        "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0),
        "keyctl": (250, 0, 0, 0, 0),
        "add_key": (248, b"user", b"k", b"v", 1, 0),
        "bpf": (321, 0, 0, 0),
        "perf_event_open": (298, 0, 0, -1, -1, 0),
        "io_uring_setup": (425, 1, 0),
        "userfaultfd": (323, 0),
        "personality": (135, 0xFFFFFFFF),
        "kexec_load": (246, 0, 0, 0, 0),
        "init_module": (175, 0, 0, b""),
        "reboot": (169, 0, 0, 0, 0),
        "swapon": (167, b"/tmp/x", 0),
        "open_by_handle_at": (304, 0, 0, 0),
    }
    for name, (nr, *args) in calls.items():
        r = libc.syscall(nr, *args)
        print(name, "ALLOWED" if r != -1 else errno.errorcode[ctypes.get_errno()])
"""


def test_seccomp_profile_denies_dangerous_syscalls(runner):
    _all_denied(runner, "runsc")


def test_seccomp_profile_denies_dangerous_syscalls_on_docker_runc(runc_runner):
    _all_denied(runc_runner, "runc")


def _all_denied(runner, runtime: str) -> None:
    result = run(runner, SECCOMP_PROBE, timeout_s=20)
    assert result.status == "succeeded" and result.runtime == runtime, result
    verdicts = dict(line.split() for line in result.stdout.splitlines())
    assert len(verdicts) == 17
    assert set(verdicts.values()) == {"EPERM"}, verdicts


def test_seccomp_profile_keeps_threads_and_subprocesses_working_on_runc(runc_runner):
    code = """
        import subprocess, threading
        t = threading.Thread(target=print, args=("thread",)); t.start(); t.join()
        out = subprocess.run("echo pipe | cat", shell=True, capture_output=True, text=True)
        print(out.stdout.strip())
    """
    result = run(runc_runner, code, timeout_s=20)
    assert result.stdout == "thread\npipe\n", result
