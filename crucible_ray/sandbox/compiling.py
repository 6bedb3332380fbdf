"""The compile stage as every backend drives it: compile, then lower the sandbox to exactly the
run's limits, or end the evaluation there. What differs per backend (how the channel, the OOM
signal, the cgroups and the output streams are reached) comes in as arguments; the protocol
itself is in :mod:`crucible_ray.sandbox.stages`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from crucible_ray.errors import SandboxFault
from crucible_ray.languages import CompileStage
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import stages
from crucible_ray.sandbox.backend import BackendFailed, Outcome

CONTROLLERS = ("memory", "cpu", "pids")  # what lowering the limits writes


def compile_then_lower(
    channel: stages.StageChannel,
    code: bytes,
    stage: CompileStage,
    policy: SandboxPolicy,
    *,
    oom_fired: Callable[[], bool],
    kill: Callable[[], None],
    cgroup: Mapping[str, Path],
    pids_headroom: int,
    reset_output: Callable[[int], None],
) -> stages.CompileOutcome | Outcome:
    """The compile stage of ``code``; an Outcome when the evaluation ends there (a compile
    error, or a run that does not fit its limits), else the stage's result with the sandbox at
    the run's limits and ``reset_output(limit)`` called to capture the program's own output.

    Raises SandboxFault when the sandbox dies during the stage (the run may be retried), and
    BackendFailed when the limits cannot be lowered: the program never runs with the
    compiler's."""
    try:
        compiled = stages.run_compile(channel, code, stage, time.monotonic() + stage.timeout_s,
                                      oom_fired)  # fmt: skip
    except stages.CompileLost as exc:
        what = "during the compile stage" if exc.received else "before the program started"
        raise SandboxFault(f"sandbox died {what}") from None
    if not compiled.succeeded:
        kill()
        return Outcome.ended_in_compile(compiled)
    if any(controller not in cgroup for controller in CONTROLLERS):
        kill()
        raise BackendFailed("the sandbox's cgroups were not found", transient=False)
    try:
        stages.lower_limits(dict(cgroup), policy, pids_headroom)
    except stages.RunDoesNotFit:
        kill()
        return Outcome.ended_in_compile(compiled, oom_killed=True)
    except OSError as exc:
        kill()
        raise BackendFailed(f"could not lower the sandbox's limits ({exc.strerror})",
                            transient=False) from exc  # fmt: skip
    reset_output(policy.output_limit_bytes)
    return compiled
