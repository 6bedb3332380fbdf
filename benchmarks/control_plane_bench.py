"""The control plane alone: CPU-milliseconds per evaluation by component, and saturated
evaluations per second, with sandboxes replaced by the benchmark-only null backend.

    .venv/bin/python benchmarks/control_plane_bench.py [-n 2000] [-c 64] [--nodes 2] [--slots 8]

The null backend (``crucible_ray/sandbox/benchmark/null.py``) runs nothing and isolates
nothing: every "program" ends at once with a 16-byte output, so what a load costs is the
control plane's (dispatcher, executor actors, Ray, the ingress and the store), which on a real
cluster is taken from sandboxes. It is enabled for this process and the cluster it starts only
(``CRUCIBLE_BENCHMARK_ONLY=1``); the test suite refuses to run with it.

One local cluster (head + ``--nodes`` executor nodes), three phases, closed loops:

1. **real sandboxes** (the baseline the issue's target is relative to): the batch path
   (``ExecutionClient``, a Ray driver) with the machine's own backend, 2 slots per node;
2. **null, batch path**: the same client and dispatcher, ``--slots`` per node;
3. **null, HTTP**: ``POST /api/eval?wait=true`` through the Serve app (2 ingress replicas,
   results recorded in SQLite).

CPU is charged per process from ``/proc`` (utime + stime, reaped children included) by
command line, as in cpu_profile.py. Writes benchmarks/results/control_plane.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_profile
from common import machine, summary, write_results

from crucible_ray.cluster import local
from crucible_ray.models import EvalRequest
from crucible_ray.policy import SandboxPolicy

PORT_OFFSET, HTTP_PORT = 800, 8900
NULL = "null-benchmark-only"
CODE = "print(sum(range(1000)))\n"
# The load generators are not the control plane: their CPU is reported apart.
COMPONENTS = [("benchmark driver", "_bench.py"), ("PostgreSQL", "postgres"),
              ("dispatcher", "Dispatcher"), ("Dispatch actors", "ray::Dispatch"),
              ("supervisor", "ray::Supervisor"),
              *cpu_profile.COMPONENTS]  # fmt: skip


def closed_loop(once, n: int, c: int) -> dict:
    """``n`` calls of ``once`` from ``c`` threads; throughput, latency and CPU by component."""
    before, started = cpu_profile.cpu_by_component(COMPONENTS), time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        latencies = list(pool.map(lambda _: once(), range(n)))
    wall = time.perf_counter() - started
    time.sleep(2)  # sandboxes torn down and replaced: their cost belongs to this run
    after = cpu_profile.cpu_by_component(COMPONENTS)
    per_eval = {k: round((after[k] - before.get(k, 0)) / n * 1000, 2) for k in after}
    per_eval = {k: v for k, v in sorted(per_eval.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    plane = sum(v for k, v in per_eval.items() if k not in ("benchmark driver", "other",
                                                            "kernel threads"))  # fmt: skip
    return {"n": n, "c": c, **summary(latencies, wall), "cpu_ms_per_eval": per_eval,
            "control_plane_cpu_ms_per_eval": round(plane, 2)}  # fmt: skip


def batch_phase(policy: SandboxPolicy, nodes: int, slots: int, n: int, c: int) -> dict:
    from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher

    config = DispatcherConfig(slots_per_actor=slots, min_actors=nodes, max_actors=nodes,
                              max_pending=max(1000, 2 * c), policy=policy)  # fmt: skip
    client = ExecutionClient(get_dispatcher(config, replace=True))
    deadline = time.monotonic() + 180
    while client.stats()["slots_ready"] < slots * nodes:
        assert time.monotonic() < deadline, "the executors never became ready"
        time.sleep(0.5)
    time.sleep(3)  # warm pools filled

    def once() -> float:
        started = time.perf_counter()
        result = client.run(EvalRequest(code=CODE))
        assert result.status == "succeeded", result
        return time.perf_counter() - started

    once()
    measured = closed_loop(once, n, c)
    print(f"batch path, {policy.backend}: {measured}", file=sys.stderr)
    return measured


def http_phase(state_dir: Path, nodes: int, slots: int, n: int, c: int, *,
               plane: str = "dispatcher", database_url: str | None = None,
               replicas: int = 2) -> dict:  # fmt: skip
    """``POST /api/eval?wait=true`` in a closed loop on the given execution plane."""
    import httpx

    from crucible_ray.api.auth import issue_token, signer_of
    from crucible_ray.api.deployment import deploy, undeploy
    from crucible_ray.execution import DispatcherConfig
    from crucible_ray.settings import Settings

    config = DispatcherConfig(slots_per_actor=slots, min_actors=nodes, max_actors=nodes,
                              max_pending=max(1000, 2 * c))  # fmt: skip
    settings = Settings(state_dir=state_dir, port=HTTP_PORT, dispatcher=config,
                        sandbox=SandboxPolicy(backend=NULL), execution_plane=plane,
                        database_url=database_url,
                        rate_limit_per_minute=1_000_000)  # fmt: skip
    deploy(settings, num_replicas=replicas)
    url = f"http://127.0.0.1:{HTTP_PORT}"
    try:
        deadline = time.monotonic() + 180
        while httpx.get(f"{url}/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the service never became healthy"
            time.sleep(1)
        time.sleep(3)
        signer = signer_of(settings)
        local_client = threading.local()  # one caller per thread: its own user and connections
        callers = itertools.count()

        def once() -> float:
            if not hasattr(local_client, "http"):
                # The service holds at most 8 waiting requests per user: a user per caller.
                token = issue_token(signer, f"control-plane-{next(callers)}", 3600)
                auth = {"Authorization": f"Bearer {token}"}
                local_client.http = httpx.Client(base_url=url, timeout=300, headers=auth)
            started = time.perf_counter()
            answer = local_client.http.post("/api/eval?wait=true", json={"code": CODE})
            if answer.status_code != 200 or answer.json()["backend"] != NULL:
                print(f"unexpected answer {answer.status_code}: {answer.text[:300]}",
                      file=sys.stderr, flush=True)  # fmt: skip
                raise RuntimeError(f"unexpected answer {answer.status_code}")
            return time.perf_counter() - started

        once()
        measured = closed_loop(once, n, c)
        print(f"HTTP, {plane} plane, {NULL}: {measured}", file=sys.stderr)
        return measured
    finally:
        undeploy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="evaluations per null phase")
    parser.add_argument("-c", type=int, default=64, help="calls in flight (null phases)")
    parser.add_argument("--real-n", type=int, default=120, help="evaluations, real phase")
    parser.add_argument("--nodes", type=int, default=2, help="simulated executor nodes")
    parser.add_argument("--slots", type=int, default=8, help="null slots per executor node")
    args = parser.parse_args()
    os.environ["CRUCIBLE_BENCHMARK_ONLY"] = "1"  # this process and the cluster it starts only
    results: dict = {"machine": machine(), "program": CODE.strip(), "nodes": args.nodes,
                     "null_slots_per_node": args.slots}  # fmt: skip
    with tempfile.TemporaryDirectory() as state_dir, tempfile.TemporaryDirectory() as data:
        local.up(executors=args.nodes, slots=max(args.slots, 2), state_dir=Path(state_dir),
                 port_offset=PORT_OFFSET)  # fmt: skip
        try:
            local.connect(Path(state_dir))
            real = batch_phase(SandboxPolicy(), args.nodes, 2, args.real_n, 4 * args.nodes)
            results["real_batch"] = real
            null = SandboxPolicy(backend=NULL)
            results["null_batch"] = batch_phase(null, args.nodes, args.slots, args.n, args.c)
            from crucible_ray.execution.client import stop_dispatcher

            stop_dispatcher()
            # Over HTTP at most 32 in flight: more is refused by Serve's own backpressure
            # (2 ingress replicas; max_queued_requests), which this does not measure.
            results["null_http"] = http_phase(Path(data), args.nodes, args.slots, args.n // 2,
                                              min(args.c, 32))  # fmt: skip
            write_results("control_plane", results, render(results))  # before the teardown
        finally:
            local.down(Path(state_dir))
    print(render(results))


def render(r: dict) -> str:
    m, real, batch, http = r["machine"], r["real_batch"], r["null_batch"], r["null_http"]
    names = list(dict.fromkeys([*batch["cpu_ms_per_eval"], *http["cpu_ms_per_eval"],
                                *real["cpu_ms_per_eval"]]))  # fmt: skip
    rows = [f"| {name} | {real['cpu_ms_per_eval'].get(name, 0)} | "
            f"{batch['cpu_ms_per_eval'].get(name, 0)} | {http['cpu_ms_per_eval'].get(name, 0)} |"
            for name in names]  # fmt: skip
    ratio = batch["evals_per_s"] / real["evals_per_s"]
    return "\n".join([
        "# The control plane alone (null backend) vs real sandboxes, one run",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Cluster: head + {r['nodes']} executor "
        f"nodes on this machine; null phases {r['null_slots_per_node']} slots per node. The "
        f"null backend runs nothing (benchmarks only): what remains is the control plane.",
        "",
        "| | real sandboxes, batch path | null, batch path | null, HTTP |",
        "|---|---|---|---|",
        f"| evaluations (in flight) | {real['n']} ({real['c']}) | {batch['n']} ({batch['c']}) |"
        f" {http['n']} ({http['c']}) |",
        f"| evals/s | {real['evals_per_s']} | **{batch['evals_per_s']}** | "
        f"**{http['evals_per_s']}** |",
        f"| p50 / p95 ms | {real['p50_ms']} / {real['p95_ms']} | {batch['p50_ms']} / "
        f"{batch['p95_ms']} | {http['p50_ms']} / {http['p95_ms']} |",
        f"| CPU ms per eval, every process but the load generator (real: sandboxes too) | "
        f"{real['control_plane_cpu_ms_per_eval']} | {batch['control_plane_cpu_ms_per_eval']} | "
        f"{http['control_plane_cpu_ms_per_eval']} |",
        "",
        f"Null batch path vs real sandboxes: **{ratio:.1f}x** the evaluations per second "
        "(issue 15's target: >= 10x).",
        "",
        "CPU milliseconds per evaluation, by component:",
        "",
        "| component | real, batch | null, batch | null, HTTP |",
        "|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
