"""Sandbox layer versus a bare ``docker run`` with the same flags, in the same run.

    .venv/bin/python benchmarks/sandbox_bench.py [--quick]

1. Latency of a trivial Python program when a request arrives at an idle service (a short
   pause between requests, the same for both): p50/p95.
2. Closed-loop throughput and latency at concurrency 1, 2, 4, 8.

The baseline is the Docker CLI, ``docker run --rm`` with every flag crucible sets (same image,
same gVisor runtime, same seccomp profile and limits), code in a read-only bind mount.
Writes benchmarks/results/sandbox.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import subprocess

from common import levels_table, machine, summary, write_results

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner
from crucible_ray.images.build import image_tag
from crucible_ray.languages import LANGUAGES
from crucible_ray.sandbox.docker.engine import RUNSC_RUNTIME_NAME

CODE = "print(sum(range(1000)))\n"
EXPECTED = "499500\n"
PAUSE_S = 0.5  # between sequential requests: an idle service, for both contenders


def bare_command(
    code_dir: str, policy: SandboxPolicy, runtime: str = RUNSC_RUNTIME_NAME
) -> list[str]:
    """``docker run`` with every flag crucible sets, on ``runtime`` (a Docker runtime name)."""
    seccomp = Path(code_dir) / "seccomp.json"
    seccomp.write_text(policy.seccomp_json())
    return [
        "docker", "run", "--rm", "-i", "--runtime", runtime, "--network", "none",
        "--memory", f"{policy.memory_mb}m", "--memory-swap", f"{policy.memory_mb}m",
        "--cpus", str(policy.cpus), "--pids-limit", str(policy.pids_limit + 1024),
        "--ulimit", f"nproc={policy.pids_limit}", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--security-opt", f"seccomp={seccomp}",
        "--user", policy.user, "--tmpfs", f"/tmp:rw,nosuid,nodev,noexec,size={policy.tmp_size_mb}m",
        "--log-driver", "none", "-v", f"{code_dir}:/code:ro",
        image_tag(LANGUAGES["python"]), "python3", "/code/main.py",
    ]  # fmt: skip


def bare_once(command: list[str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    assert out.stdout == EXPECTED, out
    return time.perf_counter() - started


def crucible_once(runner: SandboxRunner) -> float:
    started = time.perf_counter()
    result = runner.run(EvalRequest(code=CODE))
    assert result.stdout == EXPECTED, result
    return time.perf_counter() - started


def sequential(fn, n: int) -> dict[str, float]:
    latencies = []
    for _ in range(n):
        time.sleep(PAUSE_S)
        latencies.append(fn())
    return summary(latencies, sum(latencies))


def closed_loop(fn, n: int, concurrency: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda _: fn(), range(n)))
    return summary(latencies, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    args = parser.parse_args()
    n_seq, n_load = (8, 8) if args.quick else (40, 40)
    policy = SandboxPolicy()
    levels = [1, 2, 4, 8]
    results: dict[str, object] = {"machine": machine(), "program": CODE.strip(), "levels": {}}
    with tempfile.TemporaryDirectory() as code_dir:
        Path(code_dir).chmod(0o755)  # readable by the sandbox user
        (Path(code_dir) / "main.py").write_text(CODE)
        command = bare_command(code_dir, policy)
        runc_command = bare_command(code_dir, policy, "runc")
        bare_once(command)  # warm the engine's caches for all
        bare_once(runc_command)
        with SandboxRunner(policy, warm={"python": 1}) as runner:
            crucible_once(runner)
            results["idle_latency"] = {
                "bare_docker_run_runc": sequential(lambda: bare_once(runc_command), n_seq),
                "bare_docker_run": sequential(lambda: bare_once(command), n_seq),
                "crucible": sequential(lambda: crucible_once(runner), n_seq),
            }
        for c in levels:
            with SandboxRunner(policy, warm={"python": c}) as runner:
                time.sleep(2.0 + 0.4 * c)  # let the warm pool fill, as it would between bursts
                results["levels"][str(c)] = {
                    "bare_docker_run": closed_loop(lambda: bare_once(command), n_load, c),
                    "crucible": closed_loop(lambda: crucible_once(runner), n_load, c),
                }
            print(f"concurrency {c}: {results['levels'][str(c)]}", file=sys.stderr)
    idle = results["idle_latency"]
    results["latency_ratio_p50"] = round(
        idle["crucible"]["p50_ms"] / idle["bare_docker_run"]["p50_ms"], 3
    )
    results["latency_ratio_p50_vs_runc"] = round(
        idle["crucible"]["p50_ms"] / idle["bare_docker_run_runc"]["p50_ms"], 3
    )
    write_results("sandbox", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    bare, crucible = r["idle_latency"]["bare_docker_run"], r["idle_latency"]["crucible"]
    runc = r["idle_latency"]["bare_docker_run_runc"]
    m = r["machine"]
    lines = [
        "# Sandbox layer vs bare `docker run` (same flags, image and gVisor runtime)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}, {m['dockerd']}. Program: `{r['program']}`.",
        "",
        f"## Latency, request arriving at an idle service ({PAUSE_S}s apart)",
        "",
        "| | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| bare `docker run --runtime runc` | {runc['p50_ms']} | {runc['p95_ms']} |",
        f"| bare `docker run --runtime runsc` | {bare['p50_ms']} | {bare['p95_ms']} |",
        f"| crucible (runsc) | {crucible['p50_ms']} | {crucible['p95_ms']} |",
        "",
        f"p50 ratio crucible / bare runsc: **{r['latency_ratio_p50']}** (target <= 0.5); "
        f"crucible on gVisor / bare runc: **{r['latency_ratio_p50_vs_runc']}**",
        "",
        "## Closed loop",
        "",
        *levels_table(r["levels"], "bare_docker_run", "crucible", ("bare", "crucible")),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
