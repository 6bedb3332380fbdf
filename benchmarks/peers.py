"""Peers for the benchmarks: other sandboxes run on crucible's image and runtime, same program.

    .venv/bin/python benchmarks/peers.py --smoke [--runtime runsc|runc]

Each adapter runs one Python program in a fresh sandbox per call, the way that peer isolates,
on the image crucible uses for Python (``crucible-sandbox-python:<tag>``) and, where the peer
lets us choose, the same container runtime. Limits follow ``SandboxPolicy()`` as far as each
peer can express them; what it cannot is listed in its docstring.

- ``epicbox`` (PyPI): docker-py, one container per run, code on stdin.
- ``llm-sandbox`` (PyPI): docker-py, one session (container) per run, code copied in and exec'd.
- ``ray-sandbox``: Ray's experimental ``SandboxRuntime`` (gVisor backend, ``runsc`` without
  Docker, image as an EROFS root filesystem). runsc only.

The peers are the ``bench`` extra of pyproject.toml. ``available_peers()`` returns the peers
that import and pass a smoke run, and the reason for each one that does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from crucible_ray import SandboxPolicy
from crucible_ray.images.build import image_tag
from crucible_ray.languages import LANGUAGES
from crucible_ray.sandbox.engine import RUNSC_RUNTIME_NAME

CODE = "print(sum(range(1000)))\n"
EXPECTED = "499500\n"
RUNTIMES = ("runsc", "runc")
LABEL = "dev.crucible.bench-peer"  # on every container a peer creates here, to find leftovers


class Peer(Protocol):
    name: str

    def setup(self) -> None: ...  # one-time, not timed

    def run(self, code: str) -> str: ...  # one program in a fresh sandbox; its stdout

    def close(self) -> None: ...


def docker_runtime(runtime: str) -> str:
    """The Docker runtime name for crucible's runtime name."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}")
    return RUNSC_RUNTIME_NAME if runtime == "runsc" else "runc"


def python_image() -> str:
    return image_tag(LANGUAGES["python"])


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


class RaySandboxPeer:
    """Ray 2.60's experimental sandbox, through ``ray.experimental.sandbox.SandboxRuntime``.

    ``SandboxRuntime`` is the node-local layer the ``Sandbox`` actor of
    ``ray.experimental.sandbox.create()`` wraps; it is used directly, so no Ray cluster (and no
    actor hop) is part of the measurement. Per run: ``create`` (``runsc run`` of an OCI bundle
    whose process is ``sleep infinity``, polled with ``runsc state`` until running), ``exec``
    (``runsc exec python3 -c code`` as the policy's user), ``delete`` (``runsc kill`` and
    ``runsc delete -force``). It is runsc only, without Docker; runc is not available.

    Two things it needs that this machine lacks, both worked around in ``setup()``:

    1. Its image puller turns an image (registry or a flat rootfs tar) into an EROFS root
       filesystem with ``mkfs.erofs --tar``, erofs-utils 1.7+. Debian 12 ships erofs-utils 1.5
       (no ``--tar``; Ray raises ``SandboxCreationError`` before it reads the image), and there
       is no registry here. So setup exports crucible's image (``docker create`` + ``docker
       export``), unpacks it as root (owners kept), adds the mount points Ray seeds, builds the
       EROFS image with erofs-utils 1.5 from the directory (``-E noinline_data``, as Ray asks for
       gVisor's reader) and puts it in Ray's image cache under its own name with Ray's
       ``.extracted`` marker, where Ray's ``pull_image`` finds it.
    2. Ray leaves the OCI spec's inheritable capabilities as ``runsc spec`` writes them
       (AUDIT_WRITE, KILL, NET_BIND_SERVICE) even with ``capabilities=[]``; this runsc
       (release-20240729) applies them to its own sandbox process, whose bounding set lacks
       them, and fails: ``applyCaps() failed: operation not permitted`` ("cannot read client
       sync file: ... EOF"), rootless or not. Ray's private ``_oci_spec_transform_fn`` hook
       empties that set, as Docker does.

    A local image has no image config, so ``PATH`` is passed as ``env``. Limits: ``network=
    "none"``, read-only root (``/tmp`` a tmpfs, no size option), ``capabilities=[]``, ``cpu``
    and ``memory`` written as OCI cgroup limits (``rootless=True``, Ray's default: runsc may
    not enforce cgroups then), exec as the policy's user. Not set (Ray cannot): pids limit,
    seccomp profile (gVisor's own filters only), ``no-new-privileges``, ``ulimit nproc``.
    """

    name = "ray-sandbox"
    image = "crucible-bench-peer-python"  # name of our entry in Ray's image cache
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def __init__(self, runtime: str = "runsc", policy: SandboxPolicy | None = None) -> None:
        if runtime != "runsc":
            raise Unavailable("Ray's sandbox has a gVisor backend only (runsc); no runc")
        self.policy = policy or SandboxPolicy()
        self._runtime: Any = None
        self._cache_dir: Path | None = None

    def setup(self) -> None:
        from ray.experimental.sandbox import SandboxRuntime
        from ray.experimental.sandbox._internal.image_utils import expected_extract_marker

        for tool in ("runsc", "mkfs.erofs"):
            if not shutil.which(tool):
                raise Unavailable(f"{tool} not in PATH (mkfs.erofs: apt-get install erofs-utils)")
        self._runtime = SandboxRuntime()
        cache = Path(self._runtime.image_manager.get_image_dir(self.image))
        self._cache_dir = cache
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as work:
            tree = Path(work) / "rootfs"
            tree.mkdir()
            export_rootfs(python_image(), tree)
            for d in ("proc", "sys", "dev", "dev/pts", "dev/shm", "run", "tmp"):
                (tree / d).mkdir(parents=True, exist_ok=True)
            for f in ("etc/resolv.conf", "etc/hosts", "etc/hostname"):
                (tree / f).touch(exist_ok=True)
            (tree / "tmp").chmod(0o1777)
            (tree / "tmp" / ".keep").touch()  # runsc mounts a tmpfs only over an empty /tmp
            subprocess.run(
                ["mkfs.erofs", "--quiet", "-Enoinline_data", str(cache / "rootfs.erofs"),
                 str(tree)], check=True, capture_output=True,
            )  # fmt: skip
        (cache / ".extracted").write_text(expected_extract_marker())

    def run(self, code: str) -> str:
        p = self.policy
        sandbox = self._runtime.create(
            self.image, cpu=p.cpus, memory=p.memory_mb << 20, env={"PATH": self.path},
            network="none", readonly=True, capabilities=[], timeout_seconds=p.timeout_s,
            _oci_spec_transform_fn=_no_inheritable_caps,
        )  # fmt: skip
        try:
            result = self._runtime.exec(
                sandbox, ["python3", "-c", code], timeout=p.timeout_s, user=p.user
            )
        finally:
            self._runtime.delete(sandbox)
        if result.exit_code != 0:
            raise RuntimeError(f"ray-sandbox: exit {result.exit_code}: {result.stderr}")
        return result.stdout

    def close(self) -> None:
        if self._cache_dir:
            shutil.rmtree(self._cache_dir, ignore_errors=True)


def _no_inheritable_caps(spec: dict) -> dict:
    spec["process"].setdefault("capabilities", {})["inheritable"] = []
    return spec


def export_rootfs(image: str, dest: Path) -> None:
    """Unpack ``image``'s filesystem into ``dest``, owners and modes kept (we are root)."""
    name = f"crucible-bench-export-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", name, "--label", f"{LABEL}=export", image,
                    "true"], check=True, capture_output=True)  # fmt: skip
    try:
        export = subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE)
        assert export.stdout is not None
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            tar.extractall(dest, numeric_owner=True, filter="fully_trusted")  # our own image
        if export.wait() != 0:
            raise RuntimeError(f"docker export {image} failed")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


class Unavailable(Exception):
    """A peer that cannot run here; the message says why."""


PEERS: dict[str, type] = {"epicbox": EpicboxPeer, "llm-sandbox": LlmSandboxPeer,
                          "ray-sandbox": RaySandboxPeer}  # fmt: skip


def available_peers(
    runtime: str = "runsc", policy: SandboxPolicy | None = None
) -> tuple[list[Peer], dict[str, str]]:
    """Peers set up and past one smoke run, and a reason for each peer that is not."""
    ready: list[Peer] = []
    reasons: dict[str, str] = {}
    for name, cls in PEERS.items():
        peer = None
        try:
            peer = cls(runtime, policy)
            peer.setup()
            out = peer.run(CODE)
            if out != EXPECTED:
                raise Unavailable(f"smoke run printed {out!r}, expected {EXPECTED!r}")
            ready.append(peer)
        except Exception as exc:  # any failure makes the peer unavailable, with its reason
            reasons[name] = f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, Unavailable) else str(exc)  # fmt: skip
            if peer is not None:
                with contextlib.suppress(Exception):
                    peer.close()
    return ready, reasons


@contextlib.contextmanager
def peers(runtime: str = "runsc") -> Iterator[tuple[list[Peer], dict[str, str]]]:
    ready, reasons = available_peers(runtime)
    try:
        yield ready, reasons
    finally:
        for peer in ready:
            peer.close()


def leftovers() -> list[str]:
    """Containers a peer created here and left behind."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


def smoke(runtime: str, n: int) -> dict[str, Any]:
    report: dict[str, Any] = {"runtime": runtime, "image": python_image(), "peers": {}}
    with peers(runtime) as (ready, reasons):
        for peer in ready:
            latencies = []
            for _ in range(n):
                started = time.perf_counter()
                out = peer.run(CODE)
                latencies.append(round((time.perf_counter() - started) * 1000, 1))
                assert out == EXPECTED, out
            report["peers"][peer.name] = {"latency_ms": latencies}
        for name, reason in reasons.items():
            report["peers"][name] = {"unavailable": reason}
    report["leftover_containers"] = leftovers()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="run each available peer 3 times")
    parser.add_argument("--runtime", choices=RUNTIMES, default="runsc")
    parser.add_argument("-n", type=int, default=3, help="runs per peer")
    args = parser.parse_args()
    if not args.smoke:
        parser.error("only --smoke is implemented; the benchmarks import this module")
    print(json.dumps(smoke(args.runtime, args.n), indent=2))


if __name__ == "__main__":
    sys.exit(main())
