"""The process trees of local cluster nodes: is one alive, stop one with all it started."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def stop_node(pid: int, timeout_s: float = 5.0, sig: int = signal.SIGTERM) -> int:
    """Stop one node: its ``ray start`` process and every descendant (raylet, agents, and the
    workers, which Ray puts in process groups of their own)."""
    tree = descendants(pid)
    if not tree:
        return 0
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(pid_alive(m) for m in tree):
        time.sleep(0.2)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return 1


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    if not pid_alive(root):
        return []
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def node_alive(node: dict) -> bool:
    """Whether the ``ray start`` process of this node still runs. Its start time tells it from
    an unrelated process that got the pid later (pids wrap quickly on a busy host) and a
    zombie (a killed child not yet reaped) counts as dead."""
    if node.get("stopped"):
        return False
    pid = node["pid"]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z" and stat[19] == node.get("started", stat[19])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
