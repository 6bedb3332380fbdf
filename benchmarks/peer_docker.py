"""Peers that drive the Docker engine: epicbox and llm-sandbox (see benchmarks/peers.py)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peer_base import LABEL, docker_runtime, python_image

from crucible_ray import SandboxPolicy


class EpicboxPeer:
    """epicbox 1.1: ``epicbox.run(profile, command, stdin=code)``, one container per run.

    Set through epicbox itself: image (Profile.docker_image), user (Profile.user = policy user),
    read-only root (Profile.read_only), no network (Profile.network_disabled), memory and
    swap (limits["memory"] sets mem_limit = memswap_limit), pids (limits["processes"], given
    crucible's container-level value, pids_limit + 1024, because gVisor's threads count), wall
    clock (limits["realtime"]) and CPU time (limits["cputime"], RLIMIT_CPU), logging driver
    ``none`` (epicbox always sets it). The code goes on stdin to ``python3 -``: epicbox's
    ``files`` use the archive API, which needs a writable root (and is unreliable on gVisor).

    Set by us: the runtime. epicbox has no option for it (``configure()`` takes profiles and a
    Docker URL only), so ``setup()`` replaces ``epicbox.utils.get_docker_client``, the one place
    epicbox gets its client, with one client whose instance-level ``api.create_container``
    adds ``Runtime`` to the ``host_config`` docker-py built from epicbox's arguments. Only
    epicbox is touched; ``close()`` puts the original back. It is a replacement, not a wrapper,
    because epicbox 1.1's factory builds ``urllib3.Retry(method_whitelist=...)``, a TypeError
    under urllib3 2: so epicbox's Docker-API retries are gone (none fire on a healthy engine).

    Not set (epicbox cannot): ``--cpus`` (no CPU quota, only RLIMIT_CPU), ``--cap-drop ALL``
    (Docker's default capabilities), ``no-new-privileges``, crucible's seccomp profile (Docker's
    default one applies), the ``/tmp`` tmpfs (no writable path at all) and ``ulimit nproc``.
    Its structlog output is silenced by raising the ``epicbox`` logger's level. Importing
    epicbox configures structlog for the whole process if nothing did before.
    """

    name = "epicbox"

    def __init__(self, runtime: str = "runsc", policy: SandboxPolicy | None = None) -> None:
        self.runtime = runtime
        self.policy = policy or SandboxPolicy()
        self._restore: Callable[[], None] | None = None

    def setup(self) -> None:
        import docker
        import epicbox
        import epicbox.utils

        logging.getLogger("epicbox").setLevel(logging.WARNING)  # its per-run info lines cost
        epicbox.configure(profiles=[epicbox.Profile(
            "crucible-python", python_image(), command="python3 -", user=self.policy.user,
            read_only=True, network_disabled=True,
        )])  # fmt: skip
        original = epicbox.utils.get_docker_client
        # epicbox's own client factory passes urllib3 1.x's Retry(method_whitelist=...), a
        # TypeError under urllib3 2; ours is one plain client (no retries), runtime added.
        client = docker.DockerClient(base_url=epicbox.config.DOCKER_URL,
                                     timeout=epicbox.config.DOCKER_TIMEOUT)  # fmt: skip
        create = client.api.create_container
        runtime = docker_runtime(self.runtime)

        def create_container(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("host_config") is not None:
                kwargs["host_config"]["Runtime"] = runtime
            kwargs["labels"] = {LABEL: self.name}
            return create(*args, **kwargs)

        client.api.create_container = create_container
        epicbox.utils.get_docker_client = lambda *args, **kwargs: client
        self._restore = lambda: (setattr(epicbox.utils, "get_docker_client", original),
                                 client.close())  # fmt: skip

    def run(self, code: str) -> str:
        import epicbox

        p = self.policy
        limits = {"cputime": int(p.timeout_s), "realtime": p.timeout_s, "memory": p.memory_mb,
                  "processes": p.pids_limit + 1024}  # fmt: skip
        result = epicbox.run("crucible-python", stdin=code, limits=limits)
        if result["exit_code"] != 0:
            raise RuntimeError(f"epicbox: {result}")
        return result["stdout"].decode()

    def close(self) -> None:
        if self._restore:
            self._restore()
            self._restore = None


class LlmSandboxPeer:
    """llm-sandbox 0.3: one ``SandboxDockerSession`` per run (open, ``run(code)``, close).

    A fresh session is the peer's isolation unit: it creates and starts a container, copies
    the code file in with the archive API, ``exec``s the interpreter, then stops and removes
    the container. Everything else goes through its documented ``runtime_configs``, passed
    verbatim to docker-py's ``containers.create``: runtime, ``network_mode=none``, memory and
    swap, ``nano_cpus``, pids limit, ``read_only``, ``cap_drop=ALL``, ``no-new-privileges``,
    crucible's seccomp profile, ``ulimit nproc``, logging driver ``none``, and
    ``stop_signal=SIGKILL``: llm-sandbox closes with ``container.stop()``, whose default 10 s
    grace is spent in full because the idle ``sleep`` ignores SIGTERM as PID 1.

    Deviations: the image has no CMD, so the session container runs ``sleep infinity`` (as
    long-lived as the peer needs). llm-sandbox writes the code into ``/sandbox`` with the
    archive API, which on gVisor cannot reach a directory made inside the sandbox (its ``mkdir
    -p`` exec) nor a tmpfs: so each run bind-mounts a fresh host directory there (removed after
    the run), and the root can stay read-only. The file arrives mode 0600 owned by root (it is
    a ``NamedTemporaryFile``), so the program runs as root (llm-sandbox's default user),
    without capabilities, not as the policy's 65534. Its environment setup (venv, pip) is
    skipped (``skip_environment_setup``; no network), and the image has ``python3`` but no
    ``python``, so the session's language handler is told to run ``python3 {file}``. Its own
    ``mkdir`` exec before the program is part of its cost, kept. The execution timeout is
    crucible's default timeout.
    """

    name = "llm-sandbox"

    def __init__(self, runtime: str = "runsc", policy: SandboxPolicy | None = None) -> None:
        self.runtime = runtime
        self.policy = policy or SandboxPolicy()
        self._client: Any = None

    def setup(self) -> None:
        import docker
        import llm_sandbox  # noqa: F401  (fail here, not in the timed run)

        self._client = docker.from_env()

    def runtime_configs(self, workdir: str) -> dict[str, Any]:
        import docker

        p = self.policy
        return {
            "runtime": docker_runtime(self.runtime), "network_mode": "none",
            "mem_limit": f"{p.memory_mb}m", "memswap_limit": f"{p.memory_mb}m",
            "nano_cpus": int(p.cpus * 1e9), "pids_limit": p.pids_limit + 1024,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges", f"seccomp={self.policy.seccomp_json()}"],
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={p.tmp_size_mb}m"},
            "read_only": True, "volumes": {workdir: {"bind": "/sandbox", "mode": "rw"}},
            "user": "root", "ulimits": [docker.types.Ulimit(name="nproc", soft=p.pids_limit,
                                                            hard=p.pids_limit)],
            "log_config": {"type": "none"}, "command": ["sleep", "infinity"],
            "stop_signal": "SIGKILL", "labels": {LABEL: self.name},
        }  # fmt: skip

    def run(self, code: str) -> str:
        from llm_sandbox.docker import SandboxDockerSession

        with tempfile.TemporaryDirectory(prefix="crucible-peer-") as workdir:
            Path(workdir).chmod(0o755)
            session = SandboxDockerSession(
                client=self._client, image=python_image(), lang="python", keep_template=True,
                skip_environment_setup=True, runtime_configs=self.runtime_configs(workdir),
                execution_timeout=self.policy.timeout_s,
            )  # fmt: skip
            session.language_handler.config.execution_commands = ["python3 {file}"]
            with session:
                result = session.run(code)
        if result.exit_code != 0:
            raise RuntimeError(f"llm-sandbox: exit {result.exit_code}: {result.stderr}")
        return result.stdout

    def close(self) -> None:
        if self._client:
            self._client.close()
