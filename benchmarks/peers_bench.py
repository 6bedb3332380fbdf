"""crucible's sandbox layer against its peers and the raw container ceiling, in one run.

    .venv/bin/python benchmarks/peers_bench.py [--quick] [--runtime runsc|runc]

Contenders, each running ``print(sum(range(1000)))`` in a fresh sandbox per evaluation on the
same image (crucible's python image) and runtime: bare ``docker run`` with crucible's flags (the
raw container ceiling), crucible's ``SandboxRunner``, and the peers of benchmarks/peers.py
(epicbox, llm-sandbox, Ray's experimental sandbox). For each: latency at an idle service
(requests 0.5 s apart) and closed-loop throughput at concurrency 1, 4 and 8; "saturated" is the
best throughput over those levels. Targets (issue 7): crucible saturated >= 2x the best peer
and >= 0.9x the raw ceiling. Writes benchmarks/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, timed, write_results
from peers import CODE, EXPECTED, leftovers, peers
from sandbox_bench import bare_command, bare_once, closed_loop, sequential

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner

LEVELS = (1, 4, 8)
RAW = "bare docker run"


def measure(fn: Callable[[], object], n_seq: int, n_load: int) -> dict:
    run = timed(fn)
    run()  # first call: caches, not timed
    report = {"idle": sequential(run, n_seq), "levels": {}}
    for c in LEVELS:
        report["levels"][str(c)] = closed_loop(run, n_load, c)
        print(f"  c={c}: {report['levels'][str(c)]}", file=sys.stderr)
    report["saturated_evals_per_s"] = max(v["evals_per_s"] for v in report["levels"].values())
    return report


def crucible(policy: SandboxPolicy, n_seq: int, n_load: int) -> dict:
    def once(runner: SandboxRunner) -> None:
        result = runner.run(EvalRequest(code=CODE))
        assert result.stdout == EXPECTED, result

    with SandboxRunner(policy, warm={"python": 1}) as runner:
        once(runner)
        report = {"idle": sequential(timed(lambda: once(runner)), n_seq), "levels": {}}
    for c in LEVELS:  # a warm pool as deep as the concurrency, as a deployment would size it
        with SandboxRunner(policy, warm={"python": c}) as runner:
            time.sleep(2.0 + 0.4 * c)
            report["levels"][str(c)] = closed_loop(timed(lambda: once(runner)), n_load, c)
        print(f"  c={c}: {report['levels'][str(c)]}", file=sys.stderr)
    report["saturated_evals_per_s"] = max(v["evals_per_s"] for v in report["levels"].values())
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    parser.add_argument("--runtime", choices=("runsc", "runc"), default="runsc")
    args = parser.parse_args()
    n_seq, n_load = (5, 8) if args.quick else (15, 40)
    policy = SandboxPolicy(runtime=args.runtime)
    results: dict = {"machine": machine(), "runtime": args.runtime, "program": CODE.strip(),
                     "contenders": {}, "unavailable": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as code_dir:
        Path(code_dir).chmod(0o755)
        (Path(code_dir) / "main.py").write_text(CODE)
        docker_runtime = "runc" if args.runtime == "runc" else None
        command = bare_command(code_dir, policy, *([docker_runtime] if docker_runtime else []))
        print(RAW, file=sys.stderr)
        results["contenders"][RAW] = measure(lambda: bare_once(command), n_seq, n_load)
    print("crucible", file=sys.stderr)
    results["contenders"]["crucible"] = crucible(policy, n_seq, n_load)
    with peers(args.runtime) as (ready, reasons):
        results["unavailable"] = reasons
        for peer in ready:
            print(peer.name, file=sys.stderr)

            def once(peer=peer) -> None:
                assert peer.run(CODE) == EXPECTED

            results["contenders"][peer.name] = measure(once, n_seq, n_load)
    results["leftover_containers"] = leftovers()
    sat = {k: v["saturated_evals_per_s"] for k, v in results["contenders"].items()}
    best_peer = max((k for k in sat if k not in (RAW, "crucible")), key=sat.get, default=None)
    results["best_peer"] = best_peer
    results["ratio_vs_best_peer"] = (
        round(sat["crucible"] / sat[best_peer], 2) if best_peer else None
    )
    results["ratio_vs_raw_ceiling"] = round(sat["crucible"] / sat[RAW], 2)
    write_results(f"peers-{args.runtime}" if args.runtime != "runsc" else "peers", results,
                  render(results))  # fmt: skip
    print(render(results))


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# crucible's sandbox layer vs peers and the raw container ceiling ({r['runtime']})",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}`, crucible's "
        "python image, a fresh sandbox per evaluation for everyone.",
        "",
        "| contender | idle p50 ms | idle p95 ms | "
        + " | ".join(f"c={c} evals/s" for c in LEVELS)
        + " | saturated evals/s |",
        "|---|---|---|" + "---|" * len(LEVELS) + "---|",
    ]
    for name, c in r["contenders"].items():
        levels = " | ".join(str(c["levels"][str(level)]["evals_per_s"]) for level in LEVELS)
        lines.append(f"| {name} | {c['idle']['p50_ms']} | {c['idle']['p95_ms']} | {levels} | "
                     f"{c['saturated_evals_per_s']} |")  # fmt: skip
    for name, reason in r["unavailable"].items():
        lines.append(f"| {name} | unavailable: {reason} | | | | | |")
    lines += [
        "",
        f"Saturated throughput, crucible / best peer ({r['best_peer']}): "
        f"**{r['ratio_vs_best_peer']}** (target >= 2); crucible / raw container ceiling: "
        f"**{r['ratio_vs_raw_ceiling']}** (target >= 0.9).",
        "",
        "How each peer was set up, and which of crucible's limits it cannot apply: the "
        "docstrings of benchmarks/peers.py.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
