"""``crucible-ray doctor``: is this machine able to run sandboxes safely, and if not, the fix."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from crucible_ray.errors import CrucibleError
from crucible_ray.images.build import list_images
from crucible_ray.languages import LANGUAGES
from crucible_ray.models import EvalRequest
from crucible_ray.paths import sandboxes_dir
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.docker.engine import LABEL_MANAGED, Engine
from crucible_ray.sandbox.docker.sweep import stray_gvisor_processes
from crucible_ray.sandbox.owners import owner_alive

GVISOR_KERNEL = "4.4.0"  # the kernel version gVisor reports to programs


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(policy: SandboxPolicy | None = None) -> list[Check]:
    from crucible_ray.host import runsc_version
    from crucible_ray.sandbox.runner import SandboxRunner

    policy = policy or SandboxPolicy()
    engine = Engine(timeout_s=10)
    checks: list[Check] = []
    try:
        version = engine.api.version()["Version"]
        checks.append(Check("docker engine", True, f"Docker {version}"))
    except CrucibleError as exc:
        checks.append(Check("docker engine", False, str(exc), "crucible-ray setup"))
        return checks
    try:
        name = engine.check_runtime(policy.runtime)
        detail = f"{name} registered" + (
            f", gVisor {runsc_version()}" if policy.runtime == "runsc" else " (NOT gVisor)"
        )
        checks.append(Check("container runtime", True, detail))
    except CrucibleError as exc:
        checks.append(Check("container runtime", False, str(exc), "crucible-ray setup"))
    try:
        profile = json.loads(policy.seccomp_json())
        rules = len(profile["syscalls"][0]["names"])
        checks.append(Check("seccomp profile", True, f"{policy.seccomp_path} ({rules} allowed)"))
    except CrucibleError as exc:
        checks.append(Check("seccomp profile", False, f"{exc}: {policy.seccomp_path}",
                            "reinstall crucible-ray (the profile is package data)"))  # fmt: skip
    for status in list_images(engine.api, list(LANGUAGES.values())):
        checks.append(
            Check(f"image {status.language}", status.present, status.tag,
                  "" if status.present else "crucible-ray images build")
        )  # fmt: skip
    orphans = [
        c
        for c in engine.api.containers(all=True, filters={"label": LABEL_MANAGED})
        if not owner_alive(c["Labels"].get("dev.crucible.owner", ""))
    ]
    checks.append(
        Check("orphan sandboxes", not orphans, f"{len(orphans)} left by dead processes",
              "crucible-ray sweep" if orphans else "")
    )  # fmt: skip
    stray = stray_gvisor_processes(engine, sandboxes_dir())
    checks.append(
        Check("stray gVisor processes", not stray, f"{len(stray)} without a container",
              "crucible-ray sweep" if stray else "")
    )  # fmt: skip
    if all(c.ok for c in checks):
        checks.append(_probe(policy, SandboxRunner))
    return checks


def _probe(policy: SandboxPolicy, runner_cls: type) -> Check:
    """Run a real program in a real sandbox and make sure the runtime is what it claims."""
    code = "import platform; print(platform.release())"
    try:
        with runner_cls(policy) as runner:
            result = runner.run(EvalRequest(code=code, timeout_s=20))
    except CrucibleError as exc:
        return Check("sandbox probe", False, str(exc), "see the checks above")
    kernel = result.stdout.strip()
    if result.status != "succeeded":
        return Check("sandbox probe", False, f"{result.status}: {result.error or result.stderr}")
    if policy.runtime == "runsc" and kernel != GVISOR_KERNEL:
        return Check("sandbox probe", False, f"kernel {kernel}: not gVisor", "crucible-ray setup")
    return Check("sandbox probe", True, f"ran in {result.duration_ms:.0f} ms, kernel {kernel}")


def as_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], indent=2)
