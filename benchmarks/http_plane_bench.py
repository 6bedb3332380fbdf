"""The HTTP path on the two execution planes, in one run on one cluster: the dispatcher plane
(today's default) against the queue plane, both recording in the same PostgreSQL server, with
sandboxes replaced by the benchmark-only null backend (it runs nothing and isolates nothing;
see control_plane_bench.py).

    .venv/bin/python benchmarks/http_plane_bench.py [-n 1000] [-c 32] [--nodes 2] [--slots 8]
                                                    [--replicas 1,2]

Each phase is ``POST /api/eval?wait=true`` in a closed loop from ``-c`` threads (one user per
thread), through the Serve app with ``--replicas`` ingress replicas. Reported: evaluations per
second, latency, and CPU-milliseconds per evaluation by component from /proc (the whole
control plane: Serve's proxy and replicas, the dispatcher or the Dispatch actors, executor
actors, Ray's own processes, PostgreSQL). Writes benchmarks/results/http_plane.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_plane_bench as cpb
from common import machine, write_results

from crucible_ray.cluster import local
from tests.support.postgres import fresh_database, throwaway_postgres

PORT_OFFSET, PG_PORT = 950, 55396
PLANES = ("dispatcher", "queue")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="evaluations per phase")
    parser.add_argument("-c", type=int, default=32, help="calls in flight")
    parser.add_argument("--nodes", type=int, default=2, help="simulated executor nodes")
    parser.add_argument("--slots", type=int, default=8, help="null slots per executor node")
    parser.add_argument("--replicas", default="2", help="ingress replicas, comma-separated")
    args = parser.parse_args()
    os.environ["CRUCIBLE_BENCHMARK_ONLY"] = "1"  # this process and the cluster it starts only
    replicas = [int(r) for r in args.replicas.split(",")]
    results: dict = {"machine": machine(), "nodes": args.nodes, "slots": args.slots,
                     "n": args.n, "c": args.c, "phases": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as cluster_dir, throwaway_postgres(PG_PORT) as db_url:
        local.up(executors=args.nodes, slots=max(args.slots, 2), state_dir=Path(cluster_dir),
                 port_offset=PORT_OFFSET)  # fmt: skip
        try:
            local.connect(Path(cluster_dir))
            for count in replicas:
                for plane in PLANES:
                    url = fresh_database(db_url, f"http_{plane}_{count}")
                    with tempfile.TemporaryDirectory() as state:
                        measured = cpb.http_phase(Path(state), args.nodes, args.slots, args.n,
                                                  args.c, plane=plane, database_url=url,
                                                  replicas=count)  # fmt: skip
                    results["phases"].append({"plane": plane, "replicas": count, **measured})
                    write_results("http_plane", results, render(results))
        finally:
            local.down(Path(cluster_dir))
    print(render(results))


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# The HTTP path: dispatcher plane vs queue plane (null backend)",
        "",
        f"{m['cpus']} CPUs, {m['python']}; head + {r['nodes']} executor nodes of {r['slots']} "
        f"null slots; PostgreSQL; `POST /api/eval?wait=true`, {r['n']} per phase, "
        f"{r['c']} in flight. The null backend runs nothing: this is the control plane alone.",
        "",
        "| plane | ingress replicas | evals/s | p50 / p95 ms | control-plane CPU ms/eval |",
        "|---|---|---|---|---|",
    ]
    for p in r["phases"]:
        cpu = p["control_plane_cpu_ms_per_eval"]
        lines.append(f"| {p['plane']} | {p['replicas']} | **{p['evals_per_s']}** | "
                     f"{p['p50_ms']} / {p['p95_ms']} | {cpu} |")  # fmt: skip
    names = list(dict.fromkeys(k for p in r["phases"] for k in p["cpu_ms_per_eval"]))
    header = " | ".join(f"{p['plane']} x{p['replicas']}" for p in r["phases"])
    lines += ["", "CPU-ms per evaluation by component:", "", f"| component | {header} |",
              "|---|" + "---|" * len(r["phases"])]  # fmt: skip
    for name in names:
        cells = " | ".join(str(p["cpu_ms_per_eval"].get(name, 0)) for p in r["phases"])
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
