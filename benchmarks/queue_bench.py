"""The durable queue's cost on a real PostgreSQL: what the store pays per evaluation on the
queue plane (docs/design/execution-plane.md, step 2), against today's plane in the same run.

    .venv/bin/python benchmarks/queue_bench.py [-n 4000] [--users 8]

A throwaway PostgreSQL server (unix socket) and no Ray, no sandboxes: only the store's side.

1. **today's store path**: per evaluation, ``add`` + ``mark_running`` + ``finish`` (three
   transactions, as the dispatcher does).
2. **admission**: ``DurableQueue.admit`` one at a time (an interactive submission) and 100 at
   a time (a batch).
3. **claims and results**: 1, 2 and 4 claimer processes (stand-ins for executors), each
   looping ``claim(slots=k)`` then ``finish`` of k results, for k = 1 and 16.
4. **polls**: one query for the statuses of 256 waited-for ids (how an ingress replica wakes
   its waiting callers).

CPU is the server's (the postmaster and every backend, exited ones included) and the
clients' (each process's own), from /proc via psutil. Writes benchmarks/results/queue.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_results

from crucible_ray.models import EvalResult, EvalStatus, utcnow
from crucible_ray.store import EvalStore, NewEvaluation
from crucible_ray.store.queue import DurableQueue, QueueConfig
from crucible_ray.store.sealing import Sealer
from tests.support.postgres import throwaway_postgres

PORT = 55390
REQUEST = b'{"language": "python", "code": "print(sum(range(10)))"}' * 4  # ~220 bytes
KEY = bytes(range(32))  # a benchmark's fixed key: the claimers must open what was sealed


def server_cpu_s(url: str) -> float:
    """CPU seconds of the cluster's postmaster and all its backends, reaped ones included."""
    data_dir = url.split("host=")[1].split("&")[0]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "postgres" in cmdline and f"{data_dir}/cluster" in cmdline:
            total = sum(proc.cpu_times()[:4])
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):  # exited: counted by its parent
                    total += sum(child.cpu_times()[:2])
            return total
    raise RuntimeError("the benchmark's PostgreSQL server is not running")


def own_cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def new(i: int, users: int) -> NewEvaluation:
    return NewEvaluation(id=f"e{i:08d}", user=f"user{i % users}", code="x", language="python")


def result(eval_id: str) -> EvalResult:
    return EvalResult(id=eval_id, status=EvalStatus.SUCCEEDED, language="python", exit_code=0,
                      stdout="55\n", runtime="runsc", finished_at=utcnow())  # fmt: skip


def measure(url: str, n: int, work: Any) -> dict[str, float]:
    server, client, started = server_cpu_s(url), own_cpu_s(), time.perf_counter()
    extra = work()  # CPU seconds of other client processes, if it used any
    extra_client = extra if isinstance(extra, float) else 0.0
    wall = time.perf_counter() - started
    server = server_cpu_s(url) - server
    client = own_cpu_s() - client + extra_client
    return {"n": n, "wall_s": round(wall, 2), "per_s": round(n / wall, 1),
            "server_cpu_ms": round(1000 * server / n, 3),
            "client_cpu_ms": round(1000 * client / n, 3)}  # fmt: skip


def fresh(url: str) -> tuple[EvalStore, DurableQueue]:
    store = EvalStore(url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE evaluations, queue_items, queue_users, executor_leases")
    return store, DurableQueue(store, Sealer(KEY), QueueConfig(lease_ttl_s=600))


def claimer(url: str, name: str, slots: int, ready: Any, go: Any, out: Any) -> None:
    queue = DurableQueue(EvalStore(url), Sealer(KEY), QueueConfig(lease_ttl_s=600))
    token, done = queue.register(name), 0
    ready.put(name)
    go.wait()
    started = own_cpu_s()
    while got := queue.claim(name, token, slots=slots):
        done += len(queue.finish(name, token, [result(c.id) for c in got]))
    out.put((done, own_cpu_s() - started))


def claims(url: str, n: int, users: int, processes: int, slots: int) -> dict[str, float]:
    queue = fresh(url)[1]
    for start in range(0, n, 100):
        for user in range(users):
            batch = [new(i, users) for i in range(start, min(start + 100, n)) if i % users == user]
            queue.admit([(e, REQUEST) for e in batch])
    spawn = multiprocessing.get_context("spawn")
    ready, out, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    procs = [spawn.Process(target=claimer, args=(url, f"ex{p}", slots, ready, go, out))
             for p in range(processes)]  # fmt: skip
    for proc in procs:
        proc.start()
    for _ in procs:  # started, connected and registered: only the claims are measured
        ready.get(timeout=120)

    def work() -> float:
        go.set()
        reports = [out.get(timeout=600) for _ in procs]
        assert sum(done for done, _ in reports) == n, reports  # every one, exactly once
        return sum(cpu for _, cpu in reports)

    row = measure(url, n, work)
    for proc in procs:
        proc.join()
    assert queue.depth().queued == queue.depth().running == 0 and queue.reconcile() == {}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=4000, help="evaluations per phase")
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    n, users = args.n, args.users
    out: dict[str, Any] = {"machine": machine(), "n": n, "users": users,
                           "request_bytes": len(REQUEST)}  # fmt: skip
    with throwaway_postgres(PORT) as url:
        store, queue = fresh(url)

        def today() -> None:
            for i in range(n):
                store.add([new(i, users)])
                store.mark_running(f"e{i:08d}")
                store.finish(result(f"e{i:08d}"))

        out["today_store_path"] = measure(url, n, today)
        store, queue = fresh(url)
        out["admit_1"] = measure(url, n, lambda: [queue.admit([(new(i, users), REQUEST)])
                                                  for i in range(n)])  # fmt: skip
        store, queue = fresh(url)
        out["admit_100"] = measure(url, n, lambda: [
            queue.admit([(new(i, 1), REQUEST) for i in range(s, min(s + 100, n))])
            for s in range(0, n, 100)])  # fmt: skip
        out["claims"] = {f"{p}x{k}": claims(url, n, users, p, k)
                         for k in (1, 16) for p in (1, 2, 4)}  # fmt: skip
        ids = [f"e{i:08d}" for i in range(256)]
        polls = 200
        out["poll_256"] = measure(url, polls, lambda: [_poll(store, ids) for _ in range(polls)])
    write_results("queue", out, render(out))
    print(render(out))


def _poll(store: EvalStore, ids: list[str]) -> int:
    from sqlalchemy import select

    from crucible_ray.store.tables import Evaluation

    with store.engine.connect() as conn:
        return len(conn.execute(select(Evaluation.id, Evaluation.status)
                                .where(Evaluation.id.in_(ids))).all())  # fmt: skip


def render(r: dict[str, Any]) -> str:
    today = r["today_store_path"]
    lines = [
        "# The durable queue on PostgreSQL (store side only)", "",
        f"One run, {r['n']} evaluations per phase, {r['users']} users, requests of "
        f"{r['request_bytes']} bytes; {r['machine'].get('cpus', '?')} cores. Server CPU is "
        "PostgreSQL's; client CPU the calling processes'. Per evaluation, in milliseconds.", "",
        "| phase | evals/s | server CPU-ms/eval | client CPU-ms/eval |", "|---|---|---|---|",
    ]  # fmt: skip
    rows = [("today: add + mark_running + finish", today), ("admit, 1 per call", r["admit_1"]),
            ("admit, 100 per call", r["admit_100"])]  # fmt: skip
    rows += [(f"claim+finish, {key.split('x')[0]} claimers, {key.split('x')[1]} per claim", row)
             for key, row in r["claims"].items()]  # fmt: skip
    for name, row in rows:
        lines.append(f"| {name} | {row['per_s']} | {row['server_cpu_ms']} | "
                     f"{row['client_cpu_ms']} |")  # fmt: skip
    poll = r["poll_256"]
    best = min(r["claims"].values(), key=lambda row: row["server_cpu_ms"] + row["client_cpu_ms"])
    queue_plane = r["admit_100"]["server_cpu_ms"] + best["server_cpu_ms"]
    lines += [
        "", f"A poll for 256 waited-for ids: {poll['server_cpu_ms']} ms of server CPU and "
        f"{poll['client_cpu_ms']} ms of client CPU per poll ({poll['per_s']} polls/s).", "",
        f"Store CPU per evaluation: today {today['server_cpu_ms']} ms (3 transactions); on the "
        f"queue plane {queue_plane:.3f} ms (batched admission plus the cheapest claim shape), "
        f"so one server core carries about {1000 / max(queue_plane, 1e-9):,.0f} evaluations/s "
        "of store work.", "",
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
