"""SandboxPolicy: the security architecture's limits for one sandbox, with safe defaults.

Every limit a sandbox enforces is a field here, and only here. Per-language exceptions are in
:mod:`crucible_ray.languages` (``policy_overrides``); :meth:`SandboxPolicy.for_language` applies
them. How the fields become Docker settings is in :mod:`crucible_ray.sandbox.container`.

Things deliberately *not* configurable, because there is no safe alternative: the network
(none), the read-only root, dropping every capability, no-new-privileges, the non-root user.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crucible_ray.errors import InvalidRequest, RuntimeUnavailable
from crucible_ray.languages import LanguageSpec, get_language
from crucible_ray.models import EvalRequest

DEFAULT_TIMEOUT_S = 30.0  # the design's wall-clock limit
LONGEST_TIMEOUT_S = 3600.0  # what an operator may raise max_timeout_s to (a slot per program)
DEFAULT_SECCOMP_PROFILE = Path(__file__).resolve().parent.parent / "seccomp" / "crucible.json"

# Under gVisor the host pids cgroup also counts the sandbox's own host threads (~40 measured),
# so a cgroup limit of 50 makes gVisor abort the whole sandbox. There the program's limit is
# RLIMIT_NPROC, which gVisor enforces per sandbox (its own kernel), and the cgroup limit only
# backstops gVisor itself. Under runc RLIMIT_NPROC would be shared by every container running as
# the same uid, so the cgroup limit is the program's limit.
GVISOR_HOST_PIDS_HEADROOM = 1024

Runtime = Literal["runsc", "runc"]


class SandboxPolicy(BaseModel):
    """Limits for one sandbox. Defaults are the design's; tighten freely, loosen with care."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: Runtime = Field(
        "runsc",
        description="runsc (gVisor) by default; runc only when an operator sets it explicitly",
    )
    network: Literal["none"] = "none"
    memory_mb: int = Field(100, ge=32, le=8192, description="memory limit; swap is not allowed")
    cpus: float = Field(0.5, gt=0, le=16)
    pids_limit: int = Field(50, ge=8, le=4096, description="processes + threads of the program")
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=LONGEST_TIMEOUT_S,
                             description="default wall-clock limit")  # fmt: skip
    max_timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=LONGEST_TIMEOUT_S,
                                 description="longest a request may ask for")  # fmt: skip
    tmp_size_mb: int = Field(16, ge=1, le=1024, description="size of the writable /tmp tmpfs")
    tmp_exec: bool = Field(False, description="allow executing files from /tmp (Go needs it)")
    shm_size_mb: int = Field(4, ge=1, le=256, description="size of /dev/shm")
    output_limit_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="per stream")
    stdin_limit_bytes: int = Field(1 << 20, ge=0, le=64 << 20)
    code_limit_bytes: int = Field(100_000, ge=1, le=10 << 20)
    user: str = Field("65534:65534", pattern=r"^[1-9][0-9]*:[1-9][0-9]*$")
    seccomp_profile: Path = DEFAULT_SECCOMP_PROFILE

    @model_validator(mode="after")
    def _timeouts_consistent(self) -> SandboxPolicy:
        if self.timeout_s > self.max_timeout_s:
            raise ValueError("timeout_s must not exceed max_timeout_s")
        return self

    def for_language(self, overrides: dict[str, Any]) -> SandboxPolicy:
        """This policy with a language's documented needs applied (see languages.py)."""
        return self.model_validate({**self.model_dump(), **overrides}) if overrides else self

    def resolve(self, request: EvalRequest) -> tuple[LanguageSpec, SandboxPolicy, float]:
        """Check ``request`` against this policy: its language's spec and policy, and timeout.

        Raises InvalidRequest naming the field.
        """
        spec = get_language(request.language)
        policy = self.for_language(spec.policy_overrides)
        policy.check_code_size(request.code)
        if len(request.stdin.encode()) > policy.stdin_limit_bytes:
            raise InvalidRequest(f"stdin exceeds {policy.stdin_limit_bytes} bytes", field="stdin")
        timeout_s = request.timeout_s if request.timeout_s is not None else policy.timeout_s
        if not 0 < timeout_s <= policy.max_timeout_s:
            raise InvalidRequest(
                f"timeout_s must be > 0 and <= {policy.max_timeout_s:g}", field="timeout_s"
            )
        return spec, policy, timeout_s

    def check_code_size(self, code: str) -> None:
        """The one code-size check (the API answers 413 with it, before anything is recorded)."""
        if len(code.encode()) > self.code_limit_bytes:
            raise InvalidRequest(f"code exceeds {self.code_limit_bytes} bytes", field="code")

    def for_request(self, language: str) -> SandboxPolicy:
        """This policy as it applies to a program in ``language``."""
        return self.for_language(get_language(language).policy_overrides)

    def seccomp_json(self) -> str:
        """The seccomp profile for this runtime, as Docker expects it in ``security_opt``.

        Fails secure: a missing or unreadable profile refuses evaluations.
        """
        return _seccomp_for(self.seccomp_profile, self.runtime)


@cache
def _seccomp_for(path: Path, runtime: Runtime) -> str:
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeUnavailable(f"seccomp profile {path} is unusable: {exc}") from exc
    if runtime == "runsc":
        profile = runsc_variant(profile)
    return json.dumps(profile, separators=(",", ":"))


def runsc_variant(profile: dict[str, Any]) -> dict[str, Any]:
    """gVisor answers EPERM for *every* denied syscall, ignoring ``errnoRet``. glibc falls back
    from clone3 to clone only on ENOSYS, so a denied clone3 breaks every thread start. gVisor
    implements clone3 in its own kernel, so on runsc it is allowed (measured: namespaces are
    still refused through unshare/clone, and gVisor's namespaces never touch the host's)."""
    variant = copy.deepcopy(profile)
    variant["syscalls"] = [rule for rule in variant["syscalls"] if rule["names"] != ["clone3"]]
    variant["syscalls"].append({"names": ["clone3"], "action": "SCMP_ACT_ALLOW"})
    return variant
