"""What one claim costs: a Ray Serve DeploymentHandle call against a plain named-actor call
(design note docs/design/execution-plane.md, step 2a).

    .venv/bin/python benchmarks/dispatch_call_bench.py [-n 2000] [--quick]

One local Ray cluster (2 CPUs, Serve with its HTTP proxy disabled). A trivial
``claim(executor_id, n, payload_bytes) -> list[bytes]`` (``n`` distinct items totalling
``payload_bytes``, built once and returned again) is served by a Serve deployment (1 and 2
replicas) and by a named Ray actor, both async, as a real ``Dispatch`` awaiting its
database would be. The callers are plain async Ray actors, as executors are, each awaiting
``handle.claim.remote(...)`` (from ``serve.get_deployment_handle``) or
``actor.claim.remote(...)`` (from ``ray.get_actor(name)``) in a closed loop: 1 caller
(sequential) or 4 callers (concurrent). Claims: 1 item of 1 KiB, and 16 items of 4 KiB (64 KiB).

CPU per call is split by process (psutil): the caller actors, the callee (replica or actor)
processes (pids from the actors' own ``os.getpid()``), and the cluster's other processes (this
driver and all it started: GCS, raylet, Serve controller, workers), also less their idle rate
measured before each target. Whole-machine CPU (/proc/stat) is recorded too, but it counts
anything else the machine runs meanwhile, so the totals use the cluster's processes.
Writes benchmarks/results/dispatch_call.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import ray
from ray import serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, machine, percentile, write_results

ACTOR_NAME = "dispatch-actor"
CLAIMS = ((1, 1024), (16, 16 * 4096))  # (items, total bytes)
CONCURRENCY = (1, 4)
WARMUP = 50  # calls per caller before each measured case


class Dispatch:
    """The callee: ``claim`` hands out ``n`` items totalling ``payload_bytes``, nothing else."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, int], list[bytes]] = {}

    async def claim(self, executor_id: str, n: int, payload_bytes: int) -> list[bytes]:
        items = self._items.get((n, payload_bytes))
        if items is None:  # distinct objects, so pickle cannot send one item n times
            size = payload_bytes // n
            items = self._items[(n, payload_bytes)] = [bytes([i % 256]) * size for i in range(n)]
        return items

    async def pid(self) -> int:
        return os.getpid()


@ray.remote(num_cpus=0)
class Caller:
    """Stands for an executor actor (async, as ``ExecutorActor`` is): claims in a closed loop,
    awaiting a DeploymentHandle response or an actor call's ObjectRef."""

    def __init__(self) -> None:
        self._targets: dict[tuple[str, str], Any] = {}

    async def pid(self) -> int:
        return os.getpid()

    async def run(self, kind: str, name: str, calls: int, n: int,
                  payload_bytes: int) -> tuple[float, float, list[float]]:  # fmt: skip
        if (kind, name) not in self._targets:  # a DeploymentHandle, or the actor's handle
            self._targets[kind, name] = (serve.get_deployment_handle("Dispatch", app_name=name)
                                         if kind == "serve" else ray.get_actor(name))  # fmt: skip
        target, me = self._targets[kind, name], f"executor-{os.getpid()}"
        latencies, started = [], time.time()
        for _ in range(calls):  # both replies are awaitable: DeploymentResponse, ObjectRef
            t = time.perf_counter()
            items = await target.claim.remote(me, n, payload_bytes)
            latencies.append(time.perf_counter() - t)
        assert len(items) == n and sum(map(len, items)) == payload_bytes
        return started, time.time(), latencies


def cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def cluster() -> list[psutil.Process]:
    """This driver and everything it started: GCS, raylet, Serve controller, every worker."""
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def idle_rate(seconds: float) -> float:
    """CPU-s/s of the cluster's processes with nothing measured running."""
    procs = cluster()
    before = cpu_s(procs)
    time.sleep(seconds)
    return (cpu_s(procs) - before) / seconds


def measure(callers: list, kind: str, name: str, callee_pids: list[int], n: int,
            payload_bytes: int, calls: int, idle: float) -> dict[str, Any]:  # fmt: skip
    ray.get([c.run.remote(kind, name, WARMUP, n, payload_bytes) for c in callers])
    caller_procs = [psutil.Process(p) for p in ray.get([c.pid.remote() for c in callers])]
    callee_procs, ray_procs = [psutil.Process(p) for p in callee_pids], cluster()
    per_caller = calls // len(callers)
    c0, e0, r0 = cpu_s(caller_procs), cpu_s(callee_procs), cpu_s(ray_procs)
    m0, t0 = busy_seconds(), time.monotonic()
    runs = ray.get([c.run.remote(kind, name, per_caller, n, payload_bytes) for c in callers])
    c1, e1, r1 = cpu_s(caller_procs), cpu_s(callee_procs), cpu_s(ray_procs)
    m1, t1 = busy_seconds(), time.monotonic()
    latencies = [x for _, _, lat in runs for x in lat]
    total = len(latencies)
    wall = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    caller, callee = (c1 - c0) * 1000 / total, (e1 - e0) * 1000 / total
    other = (r1 - r0) * 1000 / total - caller - callee
    other_net = other - idle * (t1 - t0) * 1000 / total
    result = {
        "calls": total, "callers": len(callers), "items": n, "payload_bytes": payload_bytes,
        "calls_per_s": round(total / wall, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "cpu_ms_per_call": {"caller": round(caller, 3), "callee": round(callee, 3),
                            "other": round(other, 3), "other_less_idle": round(other_net, 3),
                            "total": round(caller + callee + other_net, 3),
                            "machine": round((m1 - m0) * 1000 / total, 3)},
        "cpu_ms_per_item": round((caller + callee + other_net) / n, 4),
        "machine_others_cpu_per_s": round((m1 - m0 - (r1 - r0)) / (t1 - t0), 2),
    }  # fmt: skip
    print(f"{kind} {name} n={n} c={len(callers)}: {result}", file=sys.stderr, flush=True)
    return result


def serve_pids(app: str, replicas: int) -> list[int]:
    handle = serve.get_deployment_handle("Dispatch", app_name=app)
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < replicas:  # the router spreads calls: ask until every replica answered
        assert time.monotonic() < deadline, f"only {len(pids)} of {replicas} replicas answered"
        pids.update(r.result() for r in [handle.pid.remote() for _ in range(8)])
    return sorted(pids)


def run_target(label: str, kind: str, name: str, pids: list[int],
               calls: int) -> dict[str, dict]:  # fmt: skip
    callers = [Caller.remote() for _ in range(max(CONCURRENCY))]  # fresh: no stale handles
    ray.get([c.pid.remote() for c in callers])
    time.sleep(3)  # deployment settled
    idle = idle_rate(5.0)
    cases = {}
    for n, payload in CLAIMS:
        for c in CONCURRENCY:
            key = f"{label} | {n} x {payload // n // 1024} KiB | c={c}"
            measured = measure(callers[:c], kind, name, pids, n, payload, calls, idle)
            cases[key] = {"target": label, "ray_idle_cpu_per_s": round(idle, 3), **measured}
    for caller in callers:
        ray.kill(caller)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per case")
    parser.add_argument("--quick", action="store_true", help="200 calls per case (smoke run)")
    args = parser.parse_args()
    calls = 200 if args.quick else args.n
    results: dict[str, Any] = {"machine": machine(), "ray": ray.__version__,
                               "calls_per_case": calls, "cases": {}}  # fmt: skip
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(proxy_location="Disabled")
        deployment = serve.deployment(Dispatch, ray_actor_options={"num_cpus": 0})
        for replicas in (1, 2):
            app = f"dispatch-{replicas}"
            serve.run(deployment.options(num_replicas=replicas).bind(), name=app,
                      route_prefix=None)  # fmt: skip
            label = f"Serve handle, {replicas} replica{'s' * (replicas > 1)}"
            pids = serve_pids(app, replicas)
            results["cases"] |= run_target(label, "serve", app, pids, calls)
            replica_procs = [psutil.Process(p) for p in pids]
            serve.delete(app)
            psutil.wait_procs(replica_procs, timeout=60)  # gone before the next idle rate
        actor = ray.remote(num_cpus=0)(Dispatch).options(name=ACTOR_NAME).remote()
        pid = ray.get(actor.pid.remote())
        results["cases"] |= run_target("named actor", "actor", ACTOR_NAME, [pid], calls)
        ray.kill(actor)
    finally:
        serve.shutdown()
        ray.shutdown()
    cases = results["cases"]
    results["serve_vs_actor_cpu_per_call"] = {  # 1 replica vs the actor, per claim and c
        k.split(" | ", 1)[1]: round(x["cpu_ms_per_call"]["total"] / cases[k.replace(
            x["target"], "named actor")]["cpu_ms_per_call"]["total"], 2)
        for k, x in cases.items() if x["target"] == "Serve handle, 1 replica"}  # fmt: skip
    write_results("dispatch_call", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m, cases = r["machine"], r["cases"]
    rows = [f"| {k} | {x['calls_per_s']} | {x['mean_ms']:.2f} / {x['p50_ms']:.2f} / "
            f"{x['p99_ms']:.2f} | {c['caller']:.2f} | {c['callee']:.2f} | {c['other']:.2f} "
            f"({c['other_less_idle']:.2f}) | **{c['total']:.2f}** | {x['cpu_ms_per_item']:.3f} |"
            for k, x in cases.items() for c in [x["cpu_ms_per_call"]]]  # fmt: skip
    s1, a1, s16, a16 = (
        [cases[f"{t} | {claim} | c={c}"] for c in CONCURRENCY]
        for claim in ("1 x 1 KiB", "16 x 4 KiB") for t in ("Serve handle, 1 replica", "named actor")
    )  # fmt: skip
    tot = [x["cpu_ms_per_call"]["total"] for x in (*s1, *a1, *s16, *a16)]
    per_item = [x["cpu_ms_per_item"] for x in (*s16, *a16)]
    extra = {k: s16[0]["cpu_ms_per_call"][k] - a16[0]["cpu_ms_per_call"][k]
             for k in ("caller", "callee", "other_less_idle")}  # fmt: skip
    busy = statistics.fmean(x["machine_others_cpu_per_s"] for x in cases.values())
    verdict = "within" if max(per_item[:2]) <= 0.1 else "above"
    return "\n".join([
        "# One claim call: Serve DeploymentHandle vs named Ray actor",
        "",
        f"{m['date']}, {m['cpus']} cores, Ray {r['ray']}, one local cluster (2 CPUs, Serve "
        f"proxy disabled). {r['calls_per_case']} calls per case; callers are async Ray actors "
        "in closed loops (c = number of callers). CPU-ms per call by process: caller actors, "
        "callee (replicas or the actor), the cluster's other processes (GCS, raylet, Serve "
        "controller, driver; in brackets: less their idle rate measured before each target; "
        "the total uses this one). The machine was shared: other tenants used "
        f"{busy:.2f} CPU-s/s on average during the cases, so calls/s and latencies are "
        "pessimistic; per-process CPU is not affected by that.",
        "",
        "| target | claim | c | calls/s | mean / p50 / p99 ms | caller | callee | other "
        "(less idle) | total CPU-ms/call | per item |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- One handle call (1 replica, 1 x 1 KiB, sequential) costs **{tot[0]:.2f} CPU-ms** "
        f"and {s1[0]['p50_ms']:.2f} ms p50, against {tot[2]:.2f} CPU-ms and "
        f"{a1[0]['p50_ms']:.2f} ms for an actor call: {tot[0] / tot[2]:.1f}x the CPU.",
        f"- Carrying a 16-item claim (64 KiB), a handle call costs {tot[4]:.2f} CPU-ms with 1 "
        f"caller and {tot[5]:.2f} with 4, i.e. {per_item[0]:.3f} / {per_item[1]:.3f} CPU-ms per "
        f"evaluation; an actor call {per_item[2]:.3f} / {per_item[3]:.3f}.",
        f"- Against a budget of 0.1 CPU-ms of routing per evaluation, a handle call carrying 16 "
        f"items is {verdict} it, and a claim/finish round trip (two calls) doubles the cost; "
        f"at this cost per call a handle would need about {max(tot[4:6]) / 0.1:.0f} items per "
        "call to meet it.",
        f"- Of the handle's extra CPU per call (16 items, c=1), {extra['caller']:.2f} ms is in "
        f"the caller (Serve's router runs in the executor's process), {extra['callee']:.2f} ms "
        f"in the replica and {extra['other_less_idle']:.2f} ms elsewhere.",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
