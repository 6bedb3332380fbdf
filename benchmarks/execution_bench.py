"""Ray execution layer versus the sandbox layer alone, at the same concurrency, in one run.

    .venv/bin/python benchmarks/execution_bench.py [--quick]

Starts its own local cluster (a head and two executor nodes, 4 sandbox slots each, beside any
cluster already running), then for each concurrency level runs the same trivial program in a
closed loop through (a) a local SandboxRunner with one warm sandbox per concurrent caller and
(b) the dispatcher and executor actors with the same number of slots and warm sandboxes.
Writes benchmarks/results/execution.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import levels_table, machine, summary, write_results

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.cluster import local

CODE = "print(sum(range(1000)))\n"
EXPECTED = "499500\n"
PORT_OFFSET = 300


def closed_loop(fn, n: int, concurrency: int) -> dict[str, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(lambda _: fn(), range(n)))
    return summary(latencies, time.perf_counter() - started)


def timed(run) -> float:
    started = time.perf_counter()
    result = run(EvalRequest(code=CODE))
    assert result.stdout == EXPECTED, result
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    args = parser.parse_args()
    n = 12 if args.quick else 60
    levels = [1, 2, 4, 8]
    results: dict = {"machine": machine(), "program": CODE.strip(), "n_per_level": n,
                     "levels": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as state_dir:
        local.up(executors=2, slots=4, state_dir=Path(state_dir), port_offset=PORT_OFFSET)
        try:
            local.connect(Path(state_dir))
            from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher

            for c in levels:
                with SandboxRunner(warm={"python": c}) as runner:
                    time.sleep(2.0 + 0.4 * c)  # warm pool filled, as between bursts
                    timed(runner.run)
                    sandbox = closed_loop(lambda r=runner: timed(r.run), n, c)
                actors = math.ceil(c / 2)
                config = DispatcherConfig(slots_per_actor=min(c, 2), min_actors=actors,
                                          max_actors=actors, max_pending=1000)  # fmt: skip
                client = ExecutionClient(get_dispatcher(config, replace=True))
                while client.stats()["slots_ready"] < min(c, 2) * actors:
                    time.sleep(0.5)
                time.sleep(2.0 + 0.4 * c)
                timed(client.run)
                ray_layer = closed_loop(lambda cl=client: timed(cl.run), n, c)
                results["levels"][str(c)] = {"sandbox_layer": sandbox, "ray_layer": ray_layer}
                print(f"concurrency {c}: {results['levels'][str(c)]}", file=sys.stderr)
            from crucible_ray.execution.client import stop_dispatcher

            stop_dispatcher()
        finally:
            local.down(Path(state_dir))
    write_results("execution", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Ray execution layer vs sandbox layer alone (same concurrency, same run)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}`, "
        f"{r['n_per_level']} evaluations per level, closed loop. Cluster: head + 2 executor "
        "nodes on the same machine.",
        "",
        *levels_table(r["levels"], "sandbox_layer", "ray_layer", ("sandbox", "ray")),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
