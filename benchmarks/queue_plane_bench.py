"""The queue plane's control plane vs the dispatcher's, with the benchmark-only null backend,
in one run on one cluster (issue 15's targets: <= 1.5 CPU-ms per evaluation for what replaces
the dispatcher, and >= 10x the machine's real-sandbox throughput).

    .venv/bin/python benchmarks/queue_plane_bench.py [-n 3000] [--nodes 2] [--slots 8]

One local cluster (head + ``--nodes`` executor nodes) and a throwaway PostgreSQL store:

1. **real sandboxes, dispatcher** (the machine's real throughput, the baseline of the target);
2. **null, dispatcher**: today's plane, closed loop (``control_plane_bench.batch_phase``);
3. **null, queue plane** with 1, 2 and 4 Dispatch actors: four users each submit their share
   in batches of 100 (admission refused when full is retried), executors pull; done when every
   evaluation is final.

The null backend runs nothing and isolates nothing (see control_plane_bench.py); it is enabled
for this process and its cluster only. CPU per evaluation by component from /proc.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane_bench as cpb
import cpu_profile
from common import machine, write_results

from crucible_ray.cluster import local
from crucible_ray.errors import Overloaded
from crucible_ray.models import EvalRequest
from crucible_ray.policy import SandboxPolicy
from tests.support.postgres import throwaway_postgres

PORT_OFFSET, PG_PORT = 900, 55395
USERS, BATCH = 4, 100
PLANE = ("Dispatch actors", "executor actors", "PostgreSQL", "supervisor")


def queue_phase(state_dir: Path, nodes: int, slots: int, n: int, dispatchers: int) -> dict:
    from crucible_ray.execution.config import DispatcherConfig
    from crucible_ray.execution.queue_client import (
        QueueClient,
        start_queue_plane,
        stop_queue_plane,
    )

    config = DispatcherConfig(slots_per_actor=slots, min_actors=nodes, max_actors=nodes,
                              max_pending=4 * BATCH * USERS, store_state_dir=str(state_dir),
                              policy=SandboxPolicy(backend=cpb.NULL))  # fmt: skip
    import ray

    supervisor = start_queue_plane(config, dispatchers=dispatchers)
    try:
        deadline = time.monotonic() + 180
        while ray.get(supervisor.stats.remote())["ready"] < nodes:
            assert time.monotonic() < deadline, "the executors never became ready"
            time.sleep(0.5)
        clients = [QueueClient(f"bench-{u}", dispatchers) for u in range(USERS)]
        first = clients[0].submit(EvalRequest(code=cpb.CODE))  # warm: the whole path once
        assert clients[0].result(first, timeout_s=60).backend == cpb.NULL
        ids: list[list[str]] = [[] for _ in range(USERS)]

        def submit(u: int) -> None:
            for start in range(0, n // USERS, BATCH):
                batch = [EvalRequest(code=cpb.CODE)] * min(BATCH, n // USERS - start)
                while True:
                    try:
                        ids[u] += clients[u].submit_many(batch)
                        break
                    except Overloaded:
                        time.sleep(0.05)

        before, started = cpu_profile.cpu_by_component(cpb.COMPONENTS), time.perf_counter()
        threads = [threading.Thread(target=submit, args=(u,)) for u in range(USERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        while (depth := clients[0].depth())["queued"] + depth["running"]:
            time.sleep(0.1)
        wall = time.perf_counter() - started
        time.sleep(2)
        after = cpu_profile.cpu_by_component(cpb.COMPONENTS)
        total = sum(len(x) for x in ids)
        sample = [clients[u].result(ids[u][-1]) for u in range(USERS)]
        assert all(r.status == "succeeded" and r.backend == cpb.NULL for r in sample), sample
        per_eval = {k: round((after[k] - before.get(k, 0)) / total * 1000, 2) for k in after}
        per_eval = {k: v for k, v in sorted(per_eval.items(), key=lambda kv: -kv[1]) if v >= 0.05}
        replaces = sum(per_eval.get(k, 0) for k in ("Dispatch actors", "supervisor"))
        plane = sum(per_eval.get(k, 0) for k in PLANE)
        result = {"n": total, "dispatchers": dispatchers, "wall_s": round(wall, 2),
                  "evals_per_s": round(total / wall, 1), "cpu_ms_per_eval": per_eval,
                  "replaces_dispatcher_cpu_ms": round(replaces, 2),
                  "queue_plane_cpu_ms": round(plane, 2)}  # fmt: skip
        print(f"queue plane, {dispatchers} Dispatch: {result}", file=sys.stderr)
        return result
    finally:
        stop_queue_plane()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="evaluations per null phase")
    parser.add_argument("--real-n", type=int, default=60, help="evaluations, real phase")
    parser.add_argument("--nodes", type=int, default=2, help="simulated executor nodes")
    parser.add_argument("--slots", type=int, default=8, help="null slots per executor node")
    args = parser.parse_args()
    os.environ["CRUCIBLE_BENCHMARK_ONLY"] = "1"  # this process and the cluster it starts only
    results: dict = {"machine": machine(), "nodes": args.nodes, "slots": args.slots}
    with (tempfile.TemporaryDirectory() as cluster_dir, tempfile.TemporaryDirectory() as data,
          throwaway_postgres(PG_PORT) as db_url):  # fmt: skip
        from crucible_ray.settings import Settings

        Settings(state_dir=Path(data), database_url=db_url).write_shared_secrets()
        local.up(executors=args.nodes, slots=max(args.slots, 2), state_dir=Path(cluster_dir),
                 port_offset=PORT_OFFSET)  # fmt: skip
        try:
            local.connect(Path(cluster_dir))
            nodes, null = args.nodes, SandboxPolicy(backend=cpb.NULL)
            results["real_dispatcher"] = cpb.batch_phase(SandboxPolicy(), nodes, 2, args.real_n,
                                                         4 * nodes)  # fmt: skip
            results["null_dispatcher"] = cpb.batch_phase(null, nodes, args.slots, args.n, 64)
            from crucible_ray.execution.client import stop_dispatcher

            stop_dispatcher()
            results["queue_plane"] = [queue_phase(Path(data), args.nodes, args.slots, args.n, d)
                                      for d in (1, 2, 4)]  # fmt: skip
            write_results("queue_plane", results, render(results))
        finally:
            local.down(Path(cluster_dir))
    print(render(results))


def render(r: dict) -> str:
    real, old = r["real_dispatcher"], r["null_dispatcher"]
    lines = [
        "# The queue plane vs the dispatcher: the control plane alone (null backend), one run",
        "", f"{r['machine']['date']}, {r['machine']['cpus']} cores. Head + {r['nodes']} "
        f"executor nodes on this machine, {r['slots']} null slots per node, PostgreSQL store. "
        "The null backend runs nothing (benchmarks only).", "",
        "| plane | evals/s | x real | CPU ms/eval replacing the dispatcher | control plane "
        "CPU ms/eval |", "|---|---|---|---|---|",
        f"| real sandboxes, dispatcher | {real['evals_per_s']} | 1.0 | - | - |",
        f"| null, dispatcher (closed loop, 64 in flight) | {old['evals_per_s']} | "
        f"{old['evals_per_s'] / real['evals_per_s']:.1f} | "
        f"{old['cpu_ms_per_eval'].get('dispatcher', 0)} | "
        f"{old['control_plane_cpu_ms_per_eval']} |",
    ]  # fmt: skip
    for phase in r["queue_plane"]:
        lines.append(f"| null, queue plane, {phase['dispatchers']} Dispatch | "
                     f"**{phase['evals_per_s']}** | "
                     f"{phase['evals_per_s'] / real['evals_per_s']:.1f} | "
                     f"**{phase['replaces_dispatcher_cpu_ms']}** | "
                     f"{phase['queue_plane_cpu_ms']} |")  # fmt: skip
    lines += ["", "CPU ms per evaluation by component, queue plane with 2 Dispatch actors:", ""]
    lines += [f"- {k}: {v}" for k, v in r["queue_plane"][1]["cpu_ms_per_eval"].items()]
    lines += ["", "\"Replacing the dispatcher\" is the Dispatch actors plus the supervisor; "
              "the queue plane's control plane adds the executors' pull loops and PostgreSQL.",
              ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
