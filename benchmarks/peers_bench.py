"""crucible's sandbox backends against their peers and the raw container ceiling, in one run.

    .venv/bin/python benchmarks/peers_bench.py [--quick] [--runtime runsc|runc]

Contenders, each running ``print(sum(range(1000)))`` in a fresh sandbox per evaluation on the
same image contents (crucible's python image) and runtime: bare ``docker run`` with crucible's
flags (the raw container ceiling), crucible's ``SandboxRunner`` on each backend (docker, and
runsc driving gVisor without Docker), and the peers of benchmarks/peers.py (epicbox,
llm-sandbox, Ray's experimental sandbox). For each: latency at an idle service (requests 0.5 s
apart), then closed-loop throughput at concurrency 1, 2, 4 and 8 with the whole machine's CPU
per evaluation (``/proc/stat`` busy time over the level, the idle rate measured before the
contender subtracted: daemons, shims and sandboxes all count). "Saturated" is the best
throughput over those levels; CPU per evaluation is over all levels' evaluations together.

crucible's runner keeps a warm pool as deep as the concurrency, as a deployment sizes it. Each
level first runs c untimed evaluations, which empty the pool, so that the level measures the
sustained rate (every evaluation waits for a boot begun during the level, as at saturation)
rather than the pool's head start; the boots still in progress when a level ends count
against it. Targets (issue 12): crucible's saturated throughput >= 2x the best peer's, and the
runsc backend's CPU per evaluation <= 0.5x the docker backend's. Writes
benchmarks/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, summary, timed, write_results
from peers import CODE, EXPECTED, leftovers, peers
from sandbox_bench import bare_command, bare_once, sequential

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner, SandboxUnavailable

LEVELS = (1, 2, 4, 8)
RAW = "bare docker run"
CRUCIBLE = {"docker": "crucible (docker backend)", "runsc": "crucible (runsc backend)"}


def level(run: Callable[[], float], n: int, concurrency: int, background: float) -> dict:
    """Closed loop at ``concurrency``: throughput, latency and machine CPU per evaluation."""
    busy, started = busy_seconds(), time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda _: run(), range(n)))
    wall = time.monotonic() - started
    cpu = busy_seconds() - busy - background * wall
    return summary(latencies, wall) | {"cpu_s": round(cpu, 3),
                                       "cpu_ms_per_eval": round(cpu / n * 1000, 1)}  # fmt: skip


def totals(report: dict) -> dict:
    levels = report["levels"].values()
    report["saturated_evals_per_s"] = max(v["evals_per_s"] for v in levels)
    n = sum(v["n"] for v in levels)
    report["n"] = n
    report["cpu_ms_per_eval"] = round(sum(v["cpu_s"] for v in levels) / n * 1000, 1)
    return report


def measure(fn: Callable[[], object], n_seq: int, n_load: int) -> dict:
    run = timed(fn)
    run()  # first call: caches, not timed
    background = idle_rate()
    report = {"idle": sequential(run, n_seq), "background_cpu_per_s": round(background, 3),
              "levels": {}}  # fmt: skip
    for c in LEVELS:
        report["levels"][str(c)] = level(run, n_load, c, background)
        print(f"  c={c}: {report['levels'][str(c)]}", file=sys.stderr)
    return totals(report)


def crucible(policy: SandboxPolicy, n_seq: int, n_load: int) -> dict:
    def once(runner: SandboxRunner) -> None:
        result = runner.run(EvalRequest(code=CODE))
        assert result.stdout == EXPECTED, result

    background = idle_rate()
    with SandboxRunner(policy, warm={"python": 1}) as runner:
        once(runner)
        report = {"idle": sequential(timed(lambda: once(runner)), n_seq),
                  "background_cpu_per_s": round(background, 3), "levels": {}}  # fmt: skip
    for c in LEVELS:  # a warm pool as deep as the concurrency, as a deployment would size it
        with SandboxRunner(policy, warm={"python": c}) as runner:
            time.sleep(2.0 + 0.4 * c)
            level(timed(lambda: once(runner)), c, c, 0.0)  # drains the pool: no head start
            report["levels"][str(c)] = level(timed(lambda: once(runner)), n_load, c, background)
        print(f"  c={c}: {report['levels'][str(c)]}", file=sys.stderr)
    return totals(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    parser.add_argument("--runtime", choices=("runsc", "runc"), default="runsc")
    args = parser.parse_args()
    n_seq, n_load = (5, 8) if args.quick else (15, 50)
    results: dict = {"machine": machine(), "runtime": args.runtime, "program": CODE.strip(),
                     "contenders": {}, "unavailable": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as code_dir:
        Path(code_dir).chmod(0o755)
        (Path(code_dir) / "main.py").write_text(CODE)
        policy = SandboxPolicy(runtime=args.runtime)
        docker_runtime = "runc" if args.runtime == "runc" else None
        command = bare_command(code_dir, policy, *([docker_runtime] if docker_runtime else []))
        print(RAW, file=sys.stderr)
        results["contenders"][RAW] = measure(lambda: bare_once(command), n_seq, n_load)
    for backend, name in CRUCIBLE.items():
        print(name, file=sys.stderr)
        try:
            policy = SandboxPolicy(runtime=args.runtime, backend=backend)
            results["contenders"][name] = crucible(policy, n_seq, n_load)
        except SandboxUnavailable as exc:  # runsc backend under --runtime runc
            results["unavailable"][name] = str(exc)
    with peers(args.runtime) as (ready, reasons):
        results["unavailable"] |= reasons
        for peer in ready:
            print(peer.name, file=sys.stderr)

            def once(peer=peer) -> None:
                assert peer.run(CODE) == EXPECTED

            results["contenders"][peer.name] = measure(once, n_seq, n_load)
    results["leftover_containers"] = leftovers()
    results |= ratios(results["contenders"])
    write_results(f"peers-{args.runtime}" if args.runtime != "runsc" else "peers", results,
                  render(results))  # fmt: skip
    print(render(results))


def ratios(contenders: dict) -> dict:
    sat = {k: v["saturated_evals_per_s"] for k, v in contenders.items()}
    ours = [k for k in sat if k in CRUCIBLE.values()]
    best_ours = max(ours, key=sat.get)
    best_peer = max((k for k in sat if k != RAW and k not in ours), key=sat.get, default=None)
    cpu = {k: contenders[k]["cpu_ms_per_eval"] for k in ours}
    return {
        "best_crucible": best_ours,
        "best_peer": best_peer,
        "ratio_vs_best_peer": round(sat[best_ours] / sat[best_peer], 2) if best_peer else None,
        "ratio_vs_raw_ceiling": round(sat[best_ours] / sat[RAW], 2),
        "cpu_ratio_runsc_vs_docker_backend": (
            round(cpu[CRUCIBLE["runsc"]] / cpu[CRUCIBLE["docker"]], 2)
            if len(cpu) == len(CRUCIBLE)
            else None
        ),
    }


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# crucible's sandbox backends vs peers and the raw container ceiling ({r['runtime']})",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}`, crucible's "
        "python image contents, a fresh sandbox per evaluation for everyone. CPU = whole-machine "
        "busy time per evaluation over all levels (idle rate subtracted).",
        "",
        "| contender | idle p50 ms | idle p95 ms | "
        + " | ".join(f"c={c} evals/s" for c in LEVELS)
        + " | saturated evals/s | CPU ms/eval | n |",
        "|---|---|---|" + "---|" * len(LEVELS) + "---|---|---|",
    ]
    for name, c in r["contenders"].items():
        levels = " | ".join(str(c["levels"][str(level)]["evals_per_s"]) for level in LEVELS)
        idle = f"{c['idle']['p50_ms']} | {c['idle']['p95_ms']}"
        totals_ = f"{c['saturated_evals_per_s']} | {c['cpu_ms_per_eval']} | {c['n']}"
        lines.append(f"| {name} | {idle} | {levels} | {totals_} |")
    for name, reason in r["unavailable"].items():
        lines.append(f"| {name} | unavailable: {reason} |" + " |" * (len(LEVELS) + 4))
    lines += [
        "",
        f"- Saturated throughput, best crucible ({r['best_crucible']}) / best peer "
        f"({r['best_peer']}): **{r['ratio_vs_best_peer']}** (target >= 2).",
        f"- Best crucible / raw container ceiling: **{r['ratio_vs_raw_ceiling']}**.",
        "- CPU per evaluation, runsc backend / docker backend: "
        f"**{r['cpu_ratio_runsc_vs_docker_backend']}** (target <= 0.5).",
        "",
        "How each peer was set up, and which of crucible's limits it cannot apply: the "
        "docstrings of benchmarks/peers.py.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
