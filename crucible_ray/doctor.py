"""``crucible-ray doctor``: is this machine able to run sandboxes safely, and if not, the fix.

Every check goes through the backend's own interface (``SandboxBackend``), so the same checks
cover every backend; the other backends are checked too, to say which ones this host could use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from crucible_ray.errors import CrucibleError
from crucible_ray.images import background, records
from crucible_ray.languages import IMAGES, LanguageSpec
from crucible_ray.models import EvalRequest
from crucible_ray.paths import sandboxes_dir
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import SandboxBackend
from crucible_ray.sandbox.registry import BACKEND_NAMES, choose, make_backend
from crucible_ray.security.rules import default_rules

GVISOR_KERNEL = "4.4.0"  # the kernel version gVisor reports to programs


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(policy: SandboxPolicy | None = None) -> list[Check]:
    from crucible_ray.sandbox.runner import SandboxRunner

    policy = policy or SandboxPolicy()
    try:
        backend, passed_over = choose(policy)
        chosen = ""
        if policy.backend == "auto":  # why this one: the fastest, or what ruled out the others
            chosen = " (auto: " + ("; ".join(f"passed over {r}" for r in passed_over)
                                   or "the fastest backend, usable here") + ")"  # fmt: skip
        checks = [Check("sandbox backend", True,
                        f"{backend.name}{chosen}: " + _described(backend))]  # fmt: skip
    except CrucibleError as exc:
        return [Check("sandbox backend", False, f"{policy.backend}: {exc}", "crucible-ray setup")]
    policy = policy.model_copy(update={"backend": backend.name})
    build = f"crucible-ray images build --backend {backend.name}"
    try:
        runtime = backend.check(policy)
        detail = "gVisor" if runtime == "runsc" else f"{runtime} (NOT gVisor: explicit opt-in)"
        checks.append(Check("container runtime", True, detail))
    except CrucibleError as exc:
        checks.append(Check("container runtime", False, str(exc), "crucible-ray setup"))
        return checks
    checks.append(_monitoring(backend, policy))
    try:
        profile = json.loads(policy.seccomp_json())
        rules = len(profile["syscalls"][0]["names"])
        checks.append(Check("seccomp profile", True, f"{policy.seccomp_path} ({rules} allowed)"))
    except CrucibleError as exc:
        checks.append(Check("seccomp profile", False, f"{exc}: {policy.seccomp_path}",
                            "reinstall crucible-ray (the profile is package data)"))  # fmt: skip
    building = background.running()
    for spec in IMAGES.values():
        try:
            reference = backend.image(spec)
            checks.append(Check(f"image {spec.name}", True, reference))
            if policy.require_signed_images:
                checks.append(_signature(backend, spec))
        except CrucibleError as exc:
            if building is None:
                checks.append(Check(f"image {spec.name}", False, str(exc), build))
            else:  # not a fault yet: its evaluations are refused until it is built
                detail = f"being built in the background (pid {building}, {background.build_log()})"
                checks.append(Check(f"image {spec.name}", True, detail))
    try:
        orphans = backend.orphans(sandboxes_dir())
        checks.append(Check("orphan sandboxes", not orphans, f"{orphans} left by dead processes",
                            "crucible-ray sweep" if orphans else ""))  # fmt: skip
    except CrucibleError as exc:
        checks.append(Check("orphan sandboxes", False, str(exc), "crucible-ray sweep"))
    checks.append(_other_backends(policy))
    if all(c.ok for c in checks):
        checks.append(_probe(policy, SandboxRunner))
    return checks


def _monitoring(backend: SandboxBackend, policy: SandboxPolicy) -> Check:
    """Runtime monitoring (informational unless the policy requires it: check() refused then)."""
    if policy.runtime_monitoring == "off":
        return Check("runtime monitoring", True, "off (SandboxPolicy.runtime_monitoring)")
    if policy.runtime != "runsc":
        return Check("runtime monitoring", True, f"not available on {policy.runtime}: results "
                     "carry no security events (gVisor's trace points need runsc)")  # fmt: skip
    how = "from the start" if backend.name == "runsc" else "attached before the code arrives"
    rules = default_rules()
    return Check("runtime monitoring", True, f"gVisor trace points ({how}), {len(rules.rules)} "
                 f"rules: {', '.join(r.id for r in rules.rules)}")  # fmt: skip


def _signature(backend: SandboxBackend, spec: LanguageSpec) -> Check:
    trust = records.check(backend.name, spec, backend.image_digest(spec), backend.images_root)
    if trust.problem is not None:
        return Check(f"signature {spec.name}", False, trust.problem,
                     "crucible-ray images sign (with the operator's key)")  # fmt: skip
    return Check(f"signature {spec.name}", True, f"signed by trusted key {trust.signed_by}")


def _described(backend: SandboxBackend) -> str:
    try:
        return ", ".join(f"{k} {v}" for k, v in backend.describe().items())
    except CrucibleError as exc:
        return f"not answering ({exc})"


def _other_backends(policy: SandboxPolicy) -> Check:
    """Which other backends this host could run (informational: never a failure)."""
    usable, not_here = [], []
    for name in BACKEND_NAMES:
        if name == policy.backend:
            continue
        try:
            make_backend(name).check(policy.model_copy(update={"backend": name}))
            usable.append(name)
        except CrucibleError as exc:
            not_here.append(f"{name} ({exc})")
    detail = f"usable: {', '.join(usable) or 'none'}"
    return Check("other backends", True, detail + (f"; not here: {'; '.join(not_here)}"
                                                   if not_here else ""))  # fmt: skip


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
    return Check("sandbox probe", True, f"{result.backend} ran it in "
                 f"{result.duration_ms:.0f} ms, kernel {kernel}")  # fmt: skip


def as_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], indent=2)
