"""Where the runsc backend's CPU per evaluation goes, process by process (sampled).

    .venv/bin/python benchmarks/runsc_cpu_split.py [-n 100] [-c 2]

The runsc backend's processes are children of the process that drives them, so their CPU
only shows, lumped, in its children's total once they are reaped. Here a sampler reads every
process's own utime+stime (``/proc/<pid>/stat``) every few milliseconds and keeps the last
value seen per process, charged to a component named from its command line: the ``runsc
run`` CLI, the sentry (``runsc-sandbox``), the systrap stub processes, the runsc helper
re-execs, and the driver itself (SandboxRunner, pipes, cgroups). What no sample caught (the
last milliseconds of short-lived processes, the kernel's own work) is the machine's busy
time minus the sum: "unattributed". Writes benchmarks/results/runsc-cpu-split.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from multiprocessing import Event, Pipe, Process
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, write_results
from sandbox_bench import CODE, EXPECTED, closed_loop

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner

TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.005
DRIVER = "driver (SandboxRunner, pipes, cgroups)"
CLI = "runsc run (CLI)"
HELPERS = "runsc helpers (boot before its re-exec, umount helper, kill, delete)"


def component(pid: int, own: int, cmd: str, comm: str) -> str | None:
    if pid == own:
        return DRIVER
    if "runsc-sandbox" in cmd:  # its comm is "exe" too: runsc re-execs /proc/self/exe
        return "sentry (runsc-sandbox)"
    if comm == "exe" and not cmd.strip():  # forked from the sentry, argv cleared
        return "systrap stubs (the sandboxed program's own user time)"
    if "runsc-gofer" in cmd:
        return "gofer"
    if cmd.startswith("runsc") and " run " in cmd:
        return CLI
    if "runsc" in cmd:
        return HELPERS
    return None


def sample(driver: int, stopping: EventType, out: Connection) -> None:
    """In a process of its own (its CPU is measured and subtracted): the last utime+stime seen
    of every process, by component, until ``stopping``; sends (totals, own CPU seconds)."""
    seen: dict[int, tuple[str, int]] = {}
    while not stopping.is_set():
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
                known = seen.get(pid)
                # runsc re-execs itself: a pid first seen as `runsc boot` becomes the sentry.
                if known is None or known[0] in (HELPERS, CLI):
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
                    name = component(pid, driver, cmd, comm)
                else:
                    name = known[0]
            except (OSError, ValueError):
                continue
            if name is not None:
                fields = stat.rsplit(")", 1)[1].split()
                seen[pid] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
        time.sleep(SAMPLE_S)
    totals: dict[str, float] = {}
    for name, ticks in seen.values():
        totals[name] = totals.get(name, 0.0) + ticks / TICK
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.send((totals, usage.ru_utime + usage.ru_stime))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("-c", type=int, default=2)
    args = parser.parse_args()
    policy = SandboxPolicy(backend="runsc")
    with SandboxRunner(policy, warm={"python": args.c}) as runner:

        def once() -> float:
            started = time.perf_counter()
            assert runner.run(EvalRequest(code=CODE)).stdout == EXPECTED
            return time.perf_counter() - started

        once()
        background = idle_rate(3.0)
        runs = [once() for _ in range(args.c)]  # the pool booted before the sampler: used up
        del runs
        stopping, (receive, send) = Event(), Pipe(duplex=False)
        sampler = Process(target=sample, args=(os.getpid(), stopping, send), daemon=True)
        own = resource.getrusage(resource.RUSAGE_SELF)
        driver_before = own.ru_utime + own.ru_stime
        busy, started = busy_seconds(), time.monotonic()
        sampler.start()
        level = closed_loop(once, args.n, args.c)
        time.sleep(1.0)  # the last sandboxes torn down and the pool refilled
        stopping.set()
        totals, sampler_cpu = receive.recv()
        sampler.join()
        wall = time.monotonic() - started
        machine_cpu = busy_seconds() - busy - background * wall - sampler_cpu
    # Processes already alive when sampling began (the driver, the pool's c sandboxes) count
    # whole: the driver's earlier CPU is subtracted below, the c booted sandboxes are the
    # ones refilled at the end, which the run also leaves behind.
    totals[DRIVER] = totals.get(DRIVER, 0.0) - driver_before
    per_eval = {k: round(v / args.n * 1000, 1) for k, v in totals.items()}
    attributed = sum(per_eval.values())
    total = round(machine_cpu / args.n * 1000, 1)
    per_eval["unattributed (exit-time CPU, kernel)"] = round(total - attributed, 1)
    results = {
        "machine": machine(),
        "n": args.n,
        "c": args.c,
        "level": level,
        "machine_cpu_ms_per_eval": total,
        "sampler_cpu_s": round(sampler_cpu, 2),
        "cpu_ms_per_eval": dict(sorted(per_eval.items(), key=lambda kv: -kv[1])),
    }
    write_results("runsc-cpu-split", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    rows = [f"| {k} | {v} |" for k, v in r["cpu_ms_per_eval"].items()]
    return "\n".join([
        "# runsc backend: CPU per evaluation by process (sampled)",
        "",
        f"{r['machine']['date']}, {r['machine']['cpus']} cores, {r['machine']['runsc']}. "
        f"{r['n']} evaluations of `{CODE.strip()}` through SandboxRunner (warm pool "
        f"{r['c']}) at concurrency {r['c']}: {r['level']['evals_per_s']} evals/s.",
        "",
        "| component | CPU ms / evaluation |",
        "|---|---|",
        *rows,
        f"| **whole machine (idle rate subtracted)** | **{r['machine_cpu_ms_per_eval']}** |",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
