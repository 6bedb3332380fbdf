"""Preparing this machine to run sandboxes: the gVisor runtime registration and the engine.

Called by ``crucible-ray setup`` (and so by the README's quick start and CI). Idempotent:
a second run changes nothing and returns quickly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import docker

from crucible_ray.sandbox.docker.engine import RUNSC_RUNTIME_ARGS, RUNSC_RUNTIME_NAME

DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_LOG = Path("/var/log/crucible-dockerd.log")
DOCKER_PID = Path("/var/run/docker.pid")


def merged_daemon_config(existing: dict[str, Any], runsc_path: str) -> dict[str, Any]:
    """``existing`` with crucible's gVisor runtime registered; every other setting is kept."""
    merged = dict(existing)
    runtimes = dict(merged.get("runtimes") or {})
    runtimes[RUNSC_RUNTIME_NAME] = {"path": runsc_path, "runtimeArgs": list(RUNSC_RUNTIME_ARGS)}
    merged["runtimes"] = runtimes
    return merged


def register_runtime(daemon_json: Path = DAEMON_JSON) -> bool:
    """Register ``crucible-runsc`` in Docker's daemon.json. Returns True when it changed."""
    runsc = shutil.which("runsc")
    if runsc is None:
        raise RuntimeError("runsc (gVisor) is not installed: apt-get install runsc")
    existing: dict[str, Any] = {}
    if daemon_json.exists():
        text = daemon_json.read_text().strip()
        existing = json.loads(text) if text else {}
    merged = merged_daemon_config(existing, runsc)
    if merged == existing:
        return False
    daemon_json.parent.mkdir(parents=True, exist_ok=True)
    tmp = daemon_json.with_suffix(".json.crucible-tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    tmp.replace(daemon_json)
    return True


def engine_answers(timeout_s: float = 5.0) -> bool:
    try:
        docker.APIClient(timeout=timeout_s).ping()
    except Exception:
        return False
    return True


def ensure_engine(config_changed: bool, wait_s: float = 60.0) -> str:
    """Start dockerd when it is not running; reload it when its configuration changed."""
    if engine_answers():
        if not config_changed:
            return "running"
        if _systemd():
            subprocess.run(["systemctl", "reload", "docker"], check=True)
        else:
            os.kill(int(DOCKER_PID.read_text().strip()), signal.SIGHUP)
        wait_for_runtime(wait_s)
        return "reloaded"
    if _systemd():
        subprocess.run(["systemctl", "start", "docker"], check=True)
    else:
        _wait_for_previous_dockerd(wait_s)
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed: apt-get install docker.io")
        log = DOCKERD_LOG.open("ab")
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + wait_s
    while not engine_answers():
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not answer within {wait_s:.0f}s; see {DOCKERD_LOG}")
        time.sleep(0.5)
    wait_for_runtime(wait_s)
    return "started"


def _wait_for_previous_dockerd(wait_s: float) -> None:
    """A dockerd that is still shutting down holds its pid file; a new one would refuse."""
    try:
        pid = int(DOCKER_PID.read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + wait_s
    while _running(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd (pid {pid}) is not answering and does not exit")
        time.sleep(0.2)
    DOCKER_PID.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not reaped it yet


def wait_for_runtime(wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if RUNSC_RUNTIME_NAME in docker.APIClient(timeout=5).info().get("Runtimes", {}):
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Docker did not load the {RUNSC_RUNTIME_NAME} runtime")


def _systemd() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def runsc_version() -> str | None:
    runsc = shutil.which("runsc")
    if runsc is None:
        return None
    out = subprocess.run([runsc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0].removeprefix("runsc version ").strip() if out.stdout else None
