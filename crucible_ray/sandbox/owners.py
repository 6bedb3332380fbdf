"""Who owns a sandbox: an owner token names one SandboxRunner process on one host, so the
orphan sweep can tell a live owner from a dead one (whose pid may have been reused)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path


def owner_token() -> str:
    """Names one SandboxRunner: ``pid-starttime-instance@host``. The pid's start time tells a
    live owner from a dead one whose pid was reused."""
    pid = os.getpid()
    return f"{pid}-{process_start_time(pid)}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"


def process_start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def owner_alive(token: str) -> bool:
    ident, at, host = token.rpartition("@")
    if not at:
        return False  # not a token of ours: nothing can own it
    if host != socket.gethostname():
        return True  # another machine's sandboxes are not ours to judge
    pid, _, rest = ident.partition("-")
    started = rest.partition("-")[0]
    return pid.isdigit() and process_start_time(int(pid)) == started
