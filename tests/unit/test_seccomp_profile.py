"""The committed profile is generated from seccomp/build_profile.py and denies what it must."""

import importlib.util
import json
from importlib import resources
from pathlib import Path

from crucible_ray.execution import DispatcherConfig
from crucible_ray.policy import DEFAULT_SECCOMP_PROFILE, SandboxPolicy

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_DENIALS = {
    "ptrace", "mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
    "personality", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "open_by_handle_at",
}  # fmt: skip


def _generator():
    spec = importlib.util.spec_from_file_location(
        "build_profile", ROOT / "seccomp" / "build_profile.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaged_profile_is_the_generators_current_output():
    packaged = resources.files("crucible_ray") / "seccomp" / "crucible.json"
    assert packaged.read_text() == _generator().render()
    assert DEFAULT_SECCOMP_PROFILE == ROOT / "crucible_ray" / "seccomp" / "crucible.json"


def test_the_default_profile_is_found_where_the_policy_is_applied():
    """The dispatcher's policy travels to executors on other nodes, whose install may live
    elsewhere: the default carries no path of the node that made it."""
    shipped = DispatcherConfig(policy=SandboxPolicy()).model_dump(mode="json")["policy"]
    assert shipped["seccomp_profile"] is None
    assert SandboxPolicy.model_validate(shipped).seccomp_path == DEFAULT_SECCOMP_PROFILE


def test_source_tree_path_is_the_packaged_file_not_a_copy():
    legacy = ROOT / "seccomp" / "crucible.json"
    assert legacy.is_symlink() and legacy.resolve() == DEFAULT_SECCOMP_PROFILE.resolve()


def test_required_syscalls_are_not_allowed():
    profile = json.loads((ROOT / "seccomp" / "crucible.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }
    assert not REQUIRED_DENIALS & allowed
    assert set(_generator().DENIED) >= REQUIRED_DENIALS


def test_clone_allowed_only_without_namespace_flags():
    profile = json.loads((ROOT / "seccomp" / "crucible.json").read_text())
    (clone,) = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    (arg,) = clone["args"]
    assert arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["valueTwo"] == 0
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert arg["value"] & flag
