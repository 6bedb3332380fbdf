"""`crucible-ray batch` on the queue plane vs on the dispatcher plane, with real sandboxes, in
one run on one cluster (issue 15, step 6: the batch path keeps its throughput on the new plane).

    .venv/bin/python benchmarks/batch_plane_bench.py [--items 600]

One local cluster (a head and two executor nodes, two slots each, beside any cluster already
running) and a throwaway PostgreSQL store. The same JSON Lines file of programs goes through
the batch command (its own process, Ray driver start-up included) with the Dispatcher actor
running, and with the queue plane (supervisor, two Dispatch actors, pulling executors) in its
place; the command finds the plane by itself. The phases run in the order dispatcher, queue,
queue, dispatcher, so that a drift of the shared machine weighs on both planes alike; each
plane's figures are the mean of its two runs. Each run's output is checked line by line; the
driver's peak RSS comes from wait4(). Writes
benchmarks/results/batch_plane.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane_bench as cpb
import cpu_profile
from batch_bench import CODE, batch_job
from common import busy_seconds, machine, write_results

from crucible_ray import EvalRequest
from crucible_ray.cluster import local
from tests.support.postgres import throwaway_postgres

PORT_OFFSET, PG_PORT = 450, 55396
NODES, SLOTS = 2, 2
COMPONENTS = [("batch command", "crucible-ray batch"), *cpb.COMPONENTS]


def measured_job(n: int, work: Path, env: dict[str, str]) -> dict:
    """The batch job, with the whole machine's busy share and CPU ms per evaluation by
    component (from /proc): to tell a plane that costs more CPU from one that leaves slots
    idle."""
    before, busy = cpu_profile.cpu_by_component(COMPONENTS), busy_seconds()
    result = batch_job(n, work, env)
    busy, after = busy_seconds() - busy, cpu_profile.cpu_by_component(COMPONENTS)
    by = {k: round((after[k] - before.get(k, 0)) / n * 1000, 1) for k in after}
    result["machine_busy"] = round(busy / (result["wall_s"] * (os.cpu_count() or 1)), 3)
    result["cpu_ms_per_eval"] = round(busy / n * 1000, 1)
    result["cpu_ms_by_component"] = {k: v for k, v in sorted(by.items(), key=lambda kv: -kv[1])
                                     if v >= 0.5}  # fmt: skip
    return result


def dispatcher_phase(n: int, work: Path, env: dict[str, str], state_dir: Path) -> dict:
    from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher
    from crucible_ray.execution.client import stop_dispatcher

    config = DispatcherConfig(slots_per_actor=SLOTS, min_actors=NODES, max_actors=NODES,
                              store_state_dir=str(state_dir))  # fmt: skip
    client = ExecutionClient(get_dispatcher(config, replace=True))
    while client.stats()["slots_ready"] < NODES * SLOTS:
        time.sleep(0.5)
    client.run(EvalRequest(code=CODE))  # warm
    try:
        return measured_job(n, work, env)
    finally:
        stop_dispatcher()


def queue_phase(n: int, work: Path, env: dict[str, str], state_dir: Path) -> dict:
    import ray

    from crucible_ray.execution.config import DispatcherConfig
    from crucible_ray.execution.queue_client import start_queue_plane, stop_queue_plane

    config = DispatcherConfig(slots_per_actor=SLOTS, min_actors=NODES, max_actors=NODES,
                              store_state_dir=str(state_dir))  # fmt: skip
    supervisor = start_queue_plane(config, dispatchers=2)
    try:
        deadline = time.monotonic() + 180
        while ray.get(supervisor.stats.remote())["ready"] < NODES:
            assert time.monotonic() < deadline, "the executors never became ready"
            time.sleep(0.5)
        return measured_job(n, work, env)
    finally:
        stop_queue_plane()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400, help="programs per run")
    args = parser.parse_args()
    results: dict = {"machine": machine(), "program": CODE.strip(), "items": args.items}
    temporary = tempfile.TemporaryDirectory
    with (temporary() as cluster_dir, temporary() as data, temporary() as work,
          throwaway_postgres(PG_PORT) as db_url):  # fmt: skip
        from crucible_ray.settings import Settings

        Settings(state_dir=Path(data), database_url=db_url).write_shared_secrets()
        state = local.up(executors=NODES, slots=SLOTS, state_dir=Path(cluster_dir),
                         port_offset=PORT_OFFSET)  # fmt: skip
        try:
            local.connect(Path(cluster_dir))
            phases = {"dispatcher": dispatcher_phase, "queue": queue_phase}
            runs: dict[str, list[dict]] = {name: [] for name in phases}
            for name in ("dispatcher", "queue", "queue", "dispatcher"):
                runs[name].append(phases[name](args.items, Path(work), state.env(), Path(data)))
                print(f"{name} plane: {runs[name][-1]}", file=sys.stderr)
            results["runs"] = runs
            for name, done in runs.items():
                keys = (
                    "n",
                    "wall_s",
                    "evals_per_s",
                    "peak_rss_mb",
                    "machine_busy",
                    "cpu_ms_per_eval",
                )
                results[name] = {k: round(sum(run[k] for run in done) / len(done), 2) for k in keys}
        finally:
            local.down(Path(cluster_dir))
    results["throughput_ratio"] = round(
        results["queue"]["evals_per_s"] / results["dispatcher"]["evals_per_s"], 3
    )
    write_results("batch_plane", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m, old, new = r["machine"], r["dispatcher"], r["queue"]
    return "\n".join([
        "# `crucible-ray batch`: the queue plane vs the dispatcher plane (same run)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}`, real "
        f"sandboxes. Cluster: head + {NODES} executor nodes x {SLOTS} slots on the same "
        "machine, PostgreSQL store.",
        "",
        "Each row is the mean of two runs (order: dispatcher, queue, queue, dispatcher).",
        "",
        "| plane | programs | wall s (process start included) | evals/s | machine busy "
        "| CPU ms per eval | driver peak RSS MB |",
        "|---|---|---|---|---|---|---|",
        *(f"| {name} | {p['n']:.0f} | {p['wall_s']} | {p['evals_per_s']} | {p['machine_busy']} "
          f"| {p['cpu_ms_per_eval']} | {p['peak_rss_mb']} |"
          for name, p in (("dispatcher", old), ("queue", new))),
        "",
        "CPU ms per evaluation by component, first run of each plane (components >= 0.5 ms):",
        "",
        *(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in
                                    r["runs"][name][0]["cpu_ms_by_component"].items())
          for name in ("dispatcher", "queue")),
        "",
        f"**Throughput ratio queue / dispatcher: {r['throughput_ratio']}** (target >= 0.9: the "
        "batch path keeps its throughput on the new plane).",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
