"""OomWatch on a real memory cgroup (v1): it fires at the first OOM, and only then."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crucible_ray.sandbox.oom import OomWatch

MEMORY = Path("/sys/fs/cgroup/memory")


@pytest.fixture
def memory_cgroup():
    path = MEMORY / f"crucible-test-oom-{secrets.token_hex(4)}"
    path.mkdir()
    (path / "memory.limit_in_bytes").write_text(str(32 << 20))
    (path / "memory.memsw.limit_in_bytes").write_text(str(32 << 20))
    yield path
    if path.exists():
        for pid in (path / "cgroup.procs").read_text().split():
            subprocess.run(["kill", "-9", pid], check=False)
        path.rmdir()


def _in_cgroup(path: Path, code: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(1)\n" + code],
                             stdin=subprocess.PIPE)  # fmt: skip
    (path / "cgroup.procs").write_text(str(child.pid))
    return child


def test_it_fires_once_when_the_cgroup_runs_out_of_memory(memory_cgroup):
    fired = threading.Event()
    calls = []
    watch = OomWatch(memory_cgroup, lambda: (calls.append(1), fired.set()))
    child = _in_cgroup(memory_cgroup, "block = bytearray(256 << 20)")
    child.communicate(b"x", timeout=30)
    assert fired.wait(10) and watch.fired and calls == [1]
    assert child.returncode == -9  # the kernel killed it: the event was a real OOM
    watch.close()


def test_it_stays_silent_without_an_oom_and_after_close(memory_cgroup):
    calls = []
    watch = OomWatch(memory_cgroup, lambda: calls.append(1))
    child = _in_cgroup(memory_cgroup, "block = bytearray(4 << 20)")
    child.communicate(b"x", timeout=30)
    assert child.returncode == 0
    watch.close()
    watch.close()  # idempotent
    # An OOM after close is not reported.
    after = _in_cgroup(memory_cgroup, "block = bytearray(256 << 20)")
    after.communicate(b"x", timeout=30)
    assert after.returncode == -9 and calls == [] and not watch.fired


def test_an_unwatchable_cgroup_is_logged_not_raised(tmp_path):
    watch = OomWatch(tmp_path / "missing", lambda: None)
    assert not watch.fired
    watch.close()


def test_the_cgroup_removed_while_watched_is_not_an_oom(memory_cgroup):
    """Container runtimes remove a sandbox's cgroup when it exits, which also wakes the watch:
    that must not read as out of memory."""
    woke = threading.Event()
    watch = OomWatch(memory_cgroup, woke.set)
    child = _in_cgroup(memory_cgroup, "print(1)")
    child.communicate(b"x", timeout=30)
    memory_cgroup.rmdir()
    assert not woke.wait(2) and not watch.fired
    watch.close()
