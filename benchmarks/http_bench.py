"""HTTP end to end: latency and throughput at concurrency 1 to 32, against the layers below it
and a bare ``docker run``, in one run.

    .venv/bin/python benchmarks/http_bench.py [--quick]

Starts its own local cluster (head + 2 executor nodes x 2 slots) with the HTTP service on
port 8700 (two ingress replicas, JWT auth, results in SQLite), then measures:
1. latency at an idle service (requests 0.5 s apart): ``POST /api/eval?wait=true`` against a
   bare ``docker run --runtime runsc`` with crucible's flags (target: p50 <= 0.5x);
2. closed-loop latency and throughput through HTTP at concurrency 1, 2, 4, 8, 16, 32 (beyond
   the 4 slots, requests queue: latency grows, throughput must hold);
3. the ceilings below it in the same run, with the cluster up but idle: the sandbox layer
   alone (SandboxRunner, 4 warm sandboxes, concurrency 4) and bare ``docker run`` at
   concurrency 4.
Writes benchmarks/results/http.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import local_service, machine, timed, write_results
from sandbox_bench import CODE, EXPECTED, bare_command, bare_once, closed_loop, sequential

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner

PORT_OFFSET, HTTP_PORT = 600, 8700
LEVELS = (1, 2, 4, 8, 16, 32)


def http_caller(url: str, token: str):
    local = threading.local()  # one connection pool per calling thread, as real callers have

    def once() -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=300,
                                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        answer = local.client.post("/api/eval?wait=true", json={"code": CODE})
        assert answer.status_code == 200 and answer.json()["stdout"] == EXPECTED, answer.text

    return once


def ceilings(policy: SandboxPolicy, n_seq: int) -> dict:
    """Bare ``docker run`` (idle latency, and throughput at concurrency 4) and the sandbox
    layer alone (throughput at concurrency 4, 4 warm sandboxes)."""
    found: dict = {}
    with tempfile.TemporaryDirectory() as code_dir:
        Path(code_dir).chmod(0o755)
        (Path(code_dir) / "main.py").write_text(CODE)
        command = bare_command(code_dir, policy)
        bare_once(command)
        bare = lambda: bare_once(command)  # noqa: E731
        found["bare_docker_run"] = {"idle": sequential(bare, n_seq),
                                    "c4": closed_loop(bare, 40, 4)}  # fmt: skip
    with SandboxRunner(policy, warm={"python": 4}) as runner:
        time.sleep(4)

        def sandbox_once() -> None:
            assert runner.run(EvalRequest(code=CODE)).stdout == EXPECTED

        found["sandbox_layer"] = {"c4": closed_loop(timed(sandbox_once), 40, 4)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    args = parser.parse_args()
    n_seq = 5 if args.quick else 20
    per_level = (lambda c: max(8, 2 * c)) if args.quick else (lambda c: max(40, 4 * c))
    results: dict = {"machine": machine(), "program": CODE.strip(), "levels": {}}
    policy = SandboxPolicy()
    # Everything is measured with the cluster and the service up, idle unless under test: the
    # ceilings then pay for the same background (Ray's daemons) as the HTTP path does.
    with local_service(PORT_OFFSET, HTTP_PORT, max_pending=64) as (url, settings, _):
        results.update(ceilings(policy, n_seq))
        print(f"ceilings: {results['bare_docker_run']} {results['sandbox_layer']}", file=sys.stderr)
        from crucible_ray.api.auth import issue_token, signer_of

        token = issue_token(signer_of(settings), "bench", 3600)
        once = timed(http_caller(url, token))
        once()
        time.sleep(3)  # warm pools refilled
        results["http_idle"] = sequential(once, n_seq)
        for c in LEVELS:
            time.sleep(3)
            results["levels"][str(c)] = closed_loop(once, per_level(c), c)
            print(f"http c={c}: {results['levels'][str(c)]}", file=sys.stderr)
    http_sat = max(v["evals_per_s"] for v in results["levels"].values())
    results["ratios"] = {
        "idle_p50_http_vs_bare_docker_run": round(
            results["http_idle"]["p50_ms"] / results["bare_docker_run"]["idle"]["p50_ms"], 3),
        "saturated_http_vs_sandbox_layer": round(
            http_sat / results["sandbox_layer"]["c4"]["evals_per_s"], 2),
        "saturated_http_vs_bare_docker_run": round(
            http_sat / results["bare_docker_run"]["c4"]["evals_per_s"], 2),
    }  # fmt: skip
    write_results("http", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m, ratios = r["machine"], r["ratios"]
    bare, idle = r["bare_docker_run"], r["http_idle"]
    lines = [
        "# HTTP end to end vs the layers below it and bare `docker run` (same run)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}` through "
        "`POST /api/eval?wait=true` (JWT, 2 ingress replicas, SQLite store), cluster head + 2 "
        "executor nodes x 2 slots on the same machine.",
        "",
        "## Latency at an idle service (requests 0.5 s apart)",
        "",
        "| | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| bare `docker run --runtime runsc` | {bare['idle']['p50_ms']} | "
        f"{bare['idle']['p95_ms']} |",
        f"| crucible over HTTP | {idle['p50_ms']} | {idle['p95_ms']} |",
        "",
        f"p50 ratio HTTP / bare docker run: **{ratios['idle_p50_http_vs_bare_docker_run']}** "
        "(target <= 0.5)",
        "",
        "## Closed loop through HTTP",
        "",
        "| concurrency | evaluations | evals/s | p50 ms | p95 ms |",
        "|---|---|---|---|---|",
        *(f"| {c} | {v['n']} | {v['evals_per_s']} | {v['p50_ms']} | {v['p95_ms']} |"
          for c, v in r["levels"].items()),
        "",
        f"Ceilings in the same run (concurrency 4): sandbox layer alone "
        f"{r['sandbox_layer']['c4']['evals_per_s']} evals/s, bare docker run "
        f"{bare['c4']['evals_per_s']} evals/s. Saturated HTTP / sandbox layer: "
        f"**{ratios['saturated_http_vs_sandbox_layer']}**; / bare docker run: "
        f"**{ratios['saturated_http_vs_bare_docker_run']}**.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
