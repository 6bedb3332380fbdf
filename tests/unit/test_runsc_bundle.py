"""The OCI config of a runsc sandbox: every limit of the policy is in it, nothing of the host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crucible_ray.languages import HEAP_SHARE, LANGUAGES
from crucible_ray.policy import GVISOR_HOST_PIDS_HEADROOM, SandboxPolicy
from crucible_ray.sandbox.runsc.bundle import (
    EROFS_SOURCE,
    EROFS_TYPE,
    MASKED_PATHS,
    READONLY_PATHS,
    bundle_config,
)

PY = LANGUAGES["python"]
POLICY = SandboxPolicy(memory_mb=123, cpus=0.25, pids_limit=42, tmp_size_mb=7, shm_size_mb=3)


def _config(policy: SandboxPolicy = POLICY, **kwargs) -> dict:
    return bundle_config(policy, PY, Path("/images/py/rootfs"), **kwargs)


def _mount(config: dict, destination: str) -> dict:
    (mount,) = [m for m in config["mounts"] if m["destination"] == destination]
    return mount


def test_process_runs_the_launcher_unprivileged_with_the_language_env_only(monkeypatch):
    monkeypatch.setenv("CRUCIBLE_SECRET", "host-secret")
    process = _config(SandboxPolicy(user="1234:4321"))["process"]
    assert process["args"] == list(PY.command)
    assert process["env"] == [f"{k}={v}" for k, v in PY.env.items()]
    assert not any("host-secret" in e or e.startswith("CRUCIBLE") for e in process["env"])
    assert set(process["env"]) != {f"{k}={v}" for k, v in os.environ.items()}
    assert process["user"] == {"uid": 1234, "gid": 4321, "additionalGids": []}
    assert process["cwd"] == "/tmp" and process["terminal"] is False
    assert process["noNewPrivileges"] is True
    caps = process["capabilities"]
    assert caps == {n: [] for n in ("bounding", "effective", "inheritable", "permitted", "ambient")}


def test_rlimits_cap_core_files_descriptors_and_processes():
    rlimits = {r["type"]: (r["soft"], r["hard"]) for r in _config()["process"]["rlimits"]}
    assert rlimits == {"RLIMIT_CORE": (0, 0), "RLIMIT_NOFILE": (1024, 1024),
                       "RLIMIT_NPROC": (42, 42)}  # fmt: skip


def test_cgroup_resources_memory_without_swap_cpu_quota_and_pids_backstop():
    resources = _config()["linux"]["resources"]
    assert resources["memory"] == {"limit": 123 << 20, "swap": 123 << 20}
    assert resources["cpu"] == {"quota": 25_000, "period": 100_000}
    assert resources["pids"] == {"limit": 42 + GVISOR_HOST_PIDS_HEADROOM}


def test_root_is_read_only_and_nothing_is_bind_mounted():
    config = _config()
    assert config["root"] == {"path": "/images/py/rootfs", "readonly": True}
    assert {m["type"] for m in config["mounts"]} == {"proc", "tmpfs", "sysfs"}
    assert [m["destination"] for m in config["mounts"]] == ["/proc", "/dev", "/sys", "/dev/shm",
                                                            "/tmp"]  # fmt: skip
    assert "ro" in _mount(config, "/sys")["options"]


def test_tmp_is_a_small_noexec_tmpfs_unless_the_policy_allows_exec():
    options = _mount(_config(), "/tmp")["options"]
    assert sorted(options) == sorted(["nosuid", "nodev", "noexec", "size=7m", "mode=1777"])
    exec_options = _mount(_config(POLICY.model_copy(update={"tmp_exec": True})), "/tmp")["options"]
    assert "noexec" not in exec_options
    assert "size=3m" in _mount(_config(), "/dev/shm")["options"]
    assert all(m["destination"] != "/build" for m in _config()["mounts"])


def test_a_compiled_language_boots_with_its_compile_stage_limits_and_an_exec_build_dir():
    go = LANGUAGES["go"]
    stage = go.compile
    config = bundle_config(POLICY, go, Path("/images/go/rootfs"))
    assert "noexec" in _mount(config, "/tmp")["options"]  # the program's scratch: as ever
    build = _mount(config, "/build")["options"]
    assert "noexec" not in build and f"size={stage.build_mb}m" in build
    resources = config["linux"]["resources"]
    assert resources["memory"]["limit"] == stage.memory_mb << 20 > POLICY.memory_mb << 20
    assert resources["cpu"]["quota"] == int(stage.cpus * 100_000)
    nproc = [r for r in config["process"]["rlimits"] if r["type"] == "RLIMIT_NPROC"]
    assert nproc[0]["hard"] == stage.pids_limit
    # The heap the program gets is sized to the run's memory, not the compiler's.
    env = dict(e.split("=", 1) for e in config["process"]["env"])
    assert env["GOMEMLIMIT"] == f"{int(POLICY.memory_mb * HEAP_SHARE)}MiB"
    assert config["process"]["args"][:2] == ["/bin/sh", "/opt/crucible/launch-compiled.sh"]


def test_isolation_namespaces_hostname_and_masked_paths():
    config = _config()
    assert {n["type"] for n in config["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts",
                                                                  "mount"}  # fmt: skip
    assert config["hostname"] == "sandbox"
    assert config["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/kcore" in MASKED_PATHS and "/proc/sys" in READONLY_PATHS
    assert config["linux"]["readonlyPaths"] == list(READONLY_PATHS)


def test_seccomp_is_the_project_profile_runsc_variant_in_oci_form():
    seccomp = _config()["linux"]["seccomp"]
    docker = json.loads(POLICY.seccomp_json())
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO" == docker["defaultAction"]
    assert seccomp["defaultErrnoRet"] == docker["defaultErrnoRet"]
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64"]
    rules = seccomp["syscalls"]
    assert len(rules) == len(docker["syscalls"])
    assert all(set(rule) <= {"names", "action", "errnoRet", "args"} for rule in rules)
    allowed = {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
               for n in r["names"]}  # fmt: skip
    assert "clone3" in allowed and "read" in allowed  # runsc variant (policy.runsc_variant)
    assert not {"unshare", "ptrace", "mount", "bpf"} & allowed
    (clone,) = [r for r in rules if r["names"] == ["clone"]]
    assert clone["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"


def test_an_unreadable_seccomp_profile_refuses_the_bundle(tmp_path):
    from crucible_ray.errors import RuntimeUnavailable

    with pytest.raises(RuntimeUnavailable):
        _config(SandboxPolicy(seccomp_profile=tmp_path / "missing.json"))


def test_erofs_root_and_cgroup_path_only_when_asked():
    plain = _config()
    assert "annotations" not in plain and "cgroupsPath" not in plain["linux"]
    config = _config(erofs_image=Path("/images/py/rootfs.erofs"), cgroups_path="/crucible/x/y")
    assert config["annotations"] == {EROFS_SOURCE: "/images/py/rootfs.erofs", EROFS_TYPE: "erofs"}
    assert config["linux"]["cgroupsPath"] == "/crucible/x/y"
