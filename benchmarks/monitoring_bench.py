"""What gVisor runtime monitoring costs per evaluation, on each backend:
``runtime_monitoring="off"`` (the baseline, in the same run) against ``"auto"`` (every sandbox
traced, its points decoded and matched by the receiver's thread; on docker that includes the
``runsc trace create`` that attaches the session to each sandbox).

    .venv/bin/python benchmarks/monitoring_bench.py [-n 60] [--backend runsc --backend docker]

Three programs, each n times per arm, the arms interleaved in blocks of 10 so that drift in the
machine's load falls on both: a trivial one (``print``), one that imports a dozen standard
modules (the open() points are most of the trace volume), and a hostile one (socket, connect,
a shell, a /proc write: the rules fire). One fresh sandbox per evaluation, no warm pool, one
after another. Reported: the whole machine's CPU per evaluation (``/proc/stat``, the idle rate
subtracted) and the latency p50 per arm, and their ratios. Writes
benchmarks/results/monitoring.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, percentile, write_results

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner

PROGRAMS = {
    "trivial": "print(1)",
    "imports": "import json, re, csv, decimal, fractions, datetime, collections, itertools, "
    "functools, statistics, heapq, bisect\nprint(len(dir(json)))",
    "hostile": "import os, socket\ns = socket.socket()\ns.settimeout(1)\n"
    "try:\n    s.connect(('203.0.113.1', 80))\nexcept OSError:\n    pass\n"
    "os.system('true')\ntry:\n    open('/proc/self/attr/current', 'w').write('x')\n"
    "except OSError:\n    pass",
}
ARMS = ("off", "auto")
BLOCK = 10


def measure(n: int, backends: list[str]) -> dict:
    idle = idle_rate()
    by_backend = {}
    for backend in backends:
        by_backend[backend] = measure_backend(n, backend, idle)
    return {"machine": machine(), "idle_cpu_per_s": round(idle, 3), "n": n,
            "backends": by_backend}  # fmt: skip


def measure_backend(n: int, backend: str, idle: float) -> dict:
    runners = {arm: SandboxRunner(SandboxPolicy(backend=backend, runtime_monitoring=arm)).start()
               for arm in ARMS}  # fmt: skip
    results: dict[str, dict[str, dict]] = {}
    try:
        for name, code in PROGRAMS.items():
            cpu = {arm: 0.0 for arm in ARMS}
            latencies: dict[str, list[float]] = {arm: [] for arm in ARMS}
            events: dict[str, int] = {arm: 0 for arm in ARMS}
            for arm in ARMS:  # one warm-up each: imports, the receiver's first connection
                runners[arm].run(EvalRequest(code=code))
            for _ in range(0, n, BLOCK):
                for arm in ARMS:
                    before, started = busy_seconds(), time.monotonic()
                    for _ in range(BLOCK):
                        t = time.monotonic()
                        result = runners[arm].run(EvalRequest(code=code))
                        latencies[arm].append(time.monotonic() - t)
                        assert result.status == "succeeded", result
                        if result.security is not None:
                            assert result.security.complete, result.security
                            events[arm] += sum(result.security.counts.values())
                    wall = time.monotonic() - started
                    cpu[arm] += busy_seconds() - before - idle * wall
            results[name] = {
                arm: {
                    "n": len(latencies[arm]),
                    "cpu_ms_per_eval": round(cpu[arm] / len(latencies[arm]) * 1000, 1),
                    "p50_ms": round(percentile(latencies[arm], 50) * 1000, 1),
                    "mean_ms": round(statistics.fmean(latencies[arm]) * 1000, 1),
                    "events_per_eval": round(events[arm] / len(latencies[arm]), 2),
                }
                for arm in ARMS
            }
    finally:
        for runner in runners.values():
            runner.close()
    return results


def markdown(data: dict) -> str:
    lines = [
        "# Runtime monitoring: cost per evaluation",
        "",
        f"One fresh sandbox per evaluation, n={data['n']} per arm and program, "
        "arms interleaved in blocks of 10; whole-machine CPU from /proc/stat, idle rate "
        f"({data['idle_cpu_per_s']} CPU-s/s) subtracted. {data['machine']['runsc']}, "
        f"{data['machine']['cpus']} CPUs, {data['machine']['date']}.",
        "",
        "| backend | program | CPU ms, off | CPU ms, monitored | CPU ratio | p50 ms, off "
        "| p50 ms, monitored | p50 ratio | events per eval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, programs in data["backends"].items():
        for name, arms in programs.items():
            off, on = arms["off"], arms["auto"]
            lines.append(
                f"| {backend} | {name} | {off['cpu_ms_per_eval']} | {on['cpu_ms_per_eval']} | "
                f"{on['cpu_ms_per_eval'] / off['cpu_ms_per_eval']:.2f} | {off['p50_ms']} | "
                f"{on['p50_ms']} | {on['p50_ms'] / off['p50_ms']:.2f} | "
                f"{on['events_per_eval']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=60, help="evaluations per arm and program")
    parser.add_argument("--backend", action="append", choices=["runsc", "docker"],
                        help="repeatable (default: both)")  # fmt: skip
    args = parser.parse_args()
    data = measure(args.n, args.backend or ["runsc", "docker"])
    write_results("monitoring", data, markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
