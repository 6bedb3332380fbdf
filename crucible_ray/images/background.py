"""Images built after ``crucible-ray setup`` returns. The quick start needs one image for its
first evaluation; the others (each language's, the variants) are built meanwhile by a detached
``crucible-ray images build``, which ``crucible-ray doctor`` reports. Until an image is built,
only the evaluations that ask for it fail, as ``image_unavailable``: nothing runs in a missing
or half-built image (each is verified before use)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from crucible_ray.paths import state_dir


def build_log() -> Path:
    return state_dir() / "logs" / "images-build.log"


def _pid_file() -> Path:
    return state_dir() / "images-build.pid"


def running() -> int | None:
    """The pid of the background build while it runs (a reused pid is not taken for it)."""
    try:
        pid = int(_pid_file().read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"images" in command and b"build" in command else None


def start(names: list[str]) -> int:
    """Build the images ``names`` in a detached process (one at a time: a second call while
    one runs returns its pid). Its output goes to :func:`build_log`."""
    already = running()
    if already is not None:
        return already
    program = shutil.which("crucible-ray") or str(Path(sys.executable).with_name("crucible-ray"))
    arguments = [part for name in names for part in ("-l", name)]
    log = build_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [program, "images", "build", *arguments],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives setup and its terminal
        )  # fmt: skip
    _pid_file().write_text(f"{process.pid}\n")
    return process.pid


def wait(timeout_s: float) -> bool:
    """Whether the background build ended within ``timeout_s`` (an ended one that its starter
    has not reaped yet has an empty command line: not running)."""
    deadline = time.monotonic() + timeout_s
    while running() is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
