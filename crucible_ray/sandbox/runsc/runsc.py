"""Calling the ``runsc`` binary: its version, the flags every sandbox runs with, and the few
commands the backend needs besides ``run`` (kill, delete, list via the state directory)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from crucible_ray.errors import RuntimeUnavailable

log = logging.getLogger(__name__)
# Tested with Debian's 0.0~20240729.0; EROFS roots (goferless) arrived in 20231113.
MIN_VERSION = 20240729
COMMAND_TIMEOUT_S = 10.0
# Every sandbox: no network, and the OCI seccomp profile applied inside gVisor to the program.
SANDBOX_FLAGS = ("--network=none", "--oci-seccomp")
_VERSION = re.compile(r"runsc version (?:\d+\.\d+~)?(?:release-)?(\d{8})")


@cache
def version(binary: str) -> tuple[int, str]:
    """(release date as YYYYMMDD, the version line); RuntimeUnavailable when unusable."""
    path = shutil.which(binary)
    if path is None:
        raise RuntimeUnavailable("gVisor (runsc) is not installed")
    try:
        out = subprocess.run([path, *SANDBOX_FLAGS, "--version"], capture_output=True,
                             text=True, timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable("gVisor (runsc) does not start") from exc
    if out.returncode != 0:  # e.g. a runsc without --oci-seccomp refuses the flag
        log.error("runsc %s --version failed: %s", " ".join(SANDBOX_FLAGS), out.stderr[-500:])
        raise RuntimeUnavailable("this runsc cannot apply the seccomp profile (--oci-seccomp)")
    match = _VERSION.search(out.stdout)
    if match is None:
        raise RuntimeUnavailable("cannot tell the runsc version")
    return int(match.group(1)), out.stdout.splitlines()[0]


def base_command(binary: str, root: Path) -> list[str]:
    return [binary, "--root", str(root)]


def command(binary: str, root: Path, *args: str) -> bool:
    """Run one runsc command against our state directory; True if it succeeded."""
    try:
        done = subprocess.run([*base_command(binary, root), *args], capture_output=True,
                              timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def state_ids(root: Path) -> set[str]:
    """Sandboxes runsc has state for in ``root`` (``<id>_sandbox:<id>.state``), no exec."""
    if not root.is_dir():
        return set()
    return {p.name.partition("_sandbox:")[0] for p in root.glob("*_sandbox:*.state")}
