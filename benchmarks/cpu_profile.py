"""Where the CPU goes: CPU-seconds per evaluation by component, sandbox layer vs HTTP.

    .venv/bin/python benchmarks/cpu_profile.py [-n 80] [-c 8]

On 2 cores a fresh gVisor sandbox is CPU-bound, so every CPU-millisecond the control plane
spends per evaluation is taken from sandboxes: this accounts for all of it. It runs ``n``
evaluations closed-loop at concurrency ``c`` twice, (a) through the sandbox layer alone and (b)
end to end over HTTP on a local cluster, and charges the CPU time (utime + stime, children
included once they are reaped) every process on the machine used meanwhile to a component
named from its command line. Writes benchmarks/results/cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import local_service, machine, timed, write_results
from http_bench import http_caller
from sandbox_bench import CODE, EXPECTED, closed_loop

from crucible_ray import EvalRequest, SandboxRunner

TICK = os.sysconf("SC_CLK_TCK")
DETAIL = os.environ.get("CPU_PROFILE_DETAIL")  # a component whose processes to list
COMPONENTS = [  # first match wins: (component, substring of the command line)
    ("gVisor sandboxes", "runsc"), ("containerd shims", "containerd-shim"),
    ("containerd", "containerd"), ("dockerd", "dockerd"),
    ("ingress replicas", "ServeReplica"), ("Serve proxy", "ProxyActor"),
    ("Serve controller", "ServeController"), ("dispatcher", "Dispatcher"),
    ("executor actors", "ExecutorActor"), ("rate limiter", "RateLimiter"),
    ("raylet", "raylet"), ("GCS", "gcs_server"), ("Ray agents", "agent"),
    ("Ray other", "ray"), ("benchmark driver", "cpu_profile"),
    # Exited sandbox processes are reparented to and reaped by PID 1: their CPU lands there.
    ("gVisor sandboxes", "process_api"), ("gVisor sandboxes", "/sbin/init"),
]  # fmt: skip


def cpu_by_component(components: list[tuple[str, str]] | None = None) -> Counter[str]:
    """CPU seconds so far by component (``components``: first match wins; default
    COMPONENTS), reaped children included."""
    components = COMPONENTS if components is None else components
    found: Counter[str] = Counter()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        default = "kernel threads" if not cmd else "other"
        name = next((c for c, key in components if key in cmd), default)
        if DETAIL and name == DETAIL:
            print(f"{ticks} {cmd[:160]}", file=sys.stderr)
        found[name] += ticks / TICK
    return found


def profile(run, n: int, c: int) -> dict:
    before, started = cpu_by_component(), time.perf_counter()
    level = closed_loop(run, n, c)
    time.sleep(3)  # sandboxes torn down and replaced: their cost belongs to this run
    after, wall = cpu_by_component(), time.perf_counter() - started
    per_eval = {k: round((after[k] - before.get(k, 0)) / n * 1000, 1) for k in after}
    per_eval = {k: v for k, v in sorted(per_eval.items(), key=lambda kv: -kv[1]) if v > 0.5}
    return {"level": level, "wall_s": round(wall, 1), "cpu_ms_per_eval": per_eval,
            "total_cpu_ms_per_eval": round(sum(per_eval.values()), 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=80)
    parser.add_argument("-c", type=int, default=8)
    args = parser.parse_args()
    results: dict = {"machine": machine(), "n": args.n, "c": args.c}
    with SandboxRunner(warm={"python": 4}) as runner:
        time.sleep(4)
        once = timed(lambda: runner.run(EvalRequest(code=CODE)).stdout == EXPECTED or 1 / 0)
        results["sandbox_layer"] = profile(once, args.n, args.c)
    print(results["sandbox_layer"], file=sys.stderr)
    with local_service(900, 9000, max_pending=64) as (url, settings, _):
        from crucible_ray.api.auth import issue_token, signer_of

        once = timed(http_caller(url, issue_token(signer_of(settings), "cpu", 3600)))  # fmt: skip
        once()
        time.sleep(5)
        results["http"] = profile(once, args.n, args.c)
    print(results["http"], file=sys.stderr)
    write_results("cpu", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    names = list(
        dict.fromkeys([*r["http"]["cpu_ms_per_eval"], *r["sandbox_layer"]["cpu_ms_per_eval"]])
    )
    rows = [f"| {name} | {r['sandbox_layer']['cpu_ms_per_eval'].get(name, 0)} | "
            f"{r['http']['cpu_ms_per_eval'].get(name, 0)} |" for name in names]  # fmt: skip
    return "\n".join([
        "# Where the CPU goes: CPU-milliseconds per evaluation, by component",
        "",
        f"{r['machine']['date']}, {r['machine']['cpus']} cores. {r['n']} evaluations of "
        f"`{CODE.strip()}` at concurrency {r['c']}.",
        "",
        "| component | sandbox layer alone | end to end over HTTP |",
        "|---|---|---|",
        *rows,
        f"| **total** | **{r['sandbox_layer']['total_cpu_ms_per_eval']}** | "
        f"**{r['http']['total_cpu_ms_per_eval']}** |",
        "",
        f"Throughput: sandbox layer {r['sandbox_layer']['level']['evals_per_s']} evals/s, "
        f"HTTP {r['http']['level']['evals_per_s']} evals/s.",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
