"""How a :class:`SandboxPolicy` becomes an OCI ``config.json`` for ``runsc run``: a pure
function, so every limit can be checked without starting anything.

No bind mounts: the code arrives on stdin (launcher protocol v2), so with an EROFS root gVisor
needs no gofer at all. The host's environment never reaches the sandbox: ``env`` is the
language's, nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crucible_ray.languages import LanguageSpec
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox.stages import BUILD_DIR, boot_policy

CPU_PERIOD_US = 100_000
# gVisor reads the root image from these annotations (runsc/boot/mount_hints.go).
EROFS_SOURCE = "dev.gvisor.spec.rootfs.source"
EROFS_TYPE = "dev.gvisor.spec.rootfs.type"

# runc's defaults (what `runc spec` writes and Docker applies): kernel state the program has no
# business reading, or writing.
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
# The OCI seccomp rule fields; Docker's profile format adds others (comment, includes...).
_RULE_FIELDS = ("names", "action", "errnoRet", "args")


def bundle_config(
    policy: SandboxPolicy,
    spec: LanguageSpec,
    root_path: Path,
    *,
    erofs_image: Path | None = None,
    cgroups_path: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime config for one sandbox. ``root_path`` is the root directory, or with
    ``erofs_image`` an empty directory the image is mounted over. A compiled language boots
    with its compile stage's limits (lowered to ``policy``'s before the program runs)."""
    run_memory_mb, policy = policy.memory_mb, boot_policy(spec, policy)
    uid, gid = (int(part) for part in policy.user.split(":"))
    tmp_options = ["nosuid", "nodev", "noexec", f"size={policy.tmp_size_mb}m", "mode=1777"]
    if policy.tmp_exec:
        tmp_options.remove("noexec")
    memory = policy.memory_mb * 1024 * 1024
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": []},
            "args": list(spec.command),
            "env": [f"{k}={v}" for k, v in spec.environment(run_memory_mb).items()],
            "cwd": "/tmp",
            # All five sets empty: an empty inheritable set too, or capset fails (NOTES.md).
            "capabilities": {
                name: []
                for name in ("bounding", "effective", "inheritable", "permitted", "ambient")
            },
            "noNewPrivileges": True,
            "rlimits": [
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                # gVisor counts these in its own kernel: the program's process limit.
                {"type": "RLIMIT_NPROC", "soft": policy.pids_limit, "hard": policy.pids_limit},
            ],
        },
        "root": {"path": str(root_path), "readonly": True},
        "hostname": "sandbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": [
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    f"size={policy.shm_size_mb}m",
                ],
            },
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": tmp_options},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": {
                # Swap limit = memory limit: no swap.
                "memory": {"limit": memory, "swap": memory},
                "cpu": {"quota": int(policy.cpus * CPU_PERIOD_US), "period": CPU_PERIOD_US},
                # The host cgroup also counts the sentry's threads: only a backstop here.
                "pids": {"limit": policy.pids_limit + GVISOR_HOST_PIDS_HEADROOM},
            },
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "seccomp": oci_seccomp(json.loads(policy.seccomp_json())),
        },
    }
    if spec.compile is not None:  # the compiler's workspace; the artifact runs from it
        build = ["nosuid", "nodev", f"size={spec.compile.build_mb}m", "mode=1777"]
        config["mounts"].append(
            {"destination": BUILD_DIR, "type": "tmpfs", "source": "tmpfs", "options": build}
        )
    if cgroups_path is not None:
        config["linux"]["cgroupsPath"] = cgroups_path
    if erofs_image is not None:
        config["annotations"] = {EROFS_SOURCE: str(erofs_image), EROFS_TYPE: "erofs"}
    return config


def oci_seccomp(profile: dict[str, Any]) -> dict[str, Any]:
    """Docker's seccomp profile format as OCI ``linux.seccomp`` (the same rules, OCI fields)."""
    seccomp: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "architectures": list(profile.get("architectures", [])),
        "syscalls": [
            {key: rule[key] for key in _RULE_FIELDS if key in rule} for rule in profile["syscalls"]
        ],
    }
    if "defaultErrnoRet" in profile:
        seccomp["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return seccomp
