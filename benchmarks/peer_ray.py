"""Ray's experimental sandbox as a peer (see benchmarks/peers.py)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

from peer_base import LABEL, Unavailable, python_image

from crucible_ray import SandboxPolicy


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
