"""How cost grows: throughput and memory at 1,000 and at 10,000 evaluations, in one run.

    .venv/bin/python benchmarks/scale_bench.py [--small 1000] [--large 10000]

Starts its own local cluster (head + 2 executor nodes x 2 slots) and the HTTP service on port
8800 (results recorded in SQLite), then runs ``--small`` and then ``--large`` programs through
the Python client (``Client.evaluate_many``, 16 in flight), the way a researcher would. After
each phase: throughput, the RSS of every process of the cluster (ingress, dispatcher, executors,
Ray itself), the client's own RSS, and the store's size on disk. Flat per-evaluation costs mean
throughput ratio ~1 and memory that does not grow with the number of evaluations.
Writes benchmarks/results/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import local_service, machine, process_usage, write_results

from crucible_ray import Client

PORT_OFFSET, HTTP_PORT = 700, 8800
CODE = "print({} * 2)"


def phase(client: Client, n: int, start: int, state, settings) -> dict:
    items = ({"code": CODE.format(i), "metadata": {"i": i}} for i in range(start, start + n))
    started = time.perf_counter()
    statuses: Counter[str] = Counter()
    for result in client.evaluate_many(items, concurrency=16, progress=False, total=n):
        statuses[result.status] += 1
        assert result.stdout == f"{result.metadata['i'] * 2}\n", result
    wall = time.perf_counter() - started
    assert statuses == {"succeeded": n}, statuses
    store = sum(f.stat().st_size for f in Path(settings.state_dir).glob("crucible.db*"))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "wall_s": round(wall, 1), "evals_per_s": round(n / wall, 2),
            "cluster": process_usage([node["pid"] for node in state.nodes]),
            "client_peak_rss_mb": round(peak_rss, 1),
            "store_mb": round(store / 1e6, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    args = parser.parse_args()
    results: dict = {"machine": machine(), "program": CODE.format("i")}
    with local_service(PORT_OFFSET, HTTP_PORT, max_pending=16) as (url, settings, state):
        from crucible_ray.api.auth import issue_token, signer_of

        token = issue_token(signer_of(settings), "scale", 6 * 3600)
        with Client(url, token=token, deadline_s=3600) as client:
            results["idle"] = {"cluster": process_usage([n["pid"] for n in state.nodes])}
            for name, n, start in (("small", args.small, 0), ("large", args.large, args.small)):
                results[name] = phase(client, n, start, state, settings)
                print(f"{name}: {results[name]}", file=sys.stderr)
    small, large = results["small"], results["large"]
    results["ratios"] = {
        "throughput_large_vs_small": round(large["evals_per_s"] / small["evals_per_s"], 2),
        "cluster_rss_after_large_vs_small": round(
            large["cluster"]["rss_mb"] / small["cluster"]["rss_mb"], 2),
        "client_peak_rss_large_vs_small": round(
            large["client_peak_rss_mb"] / small["client_peak_rss_mb"], 2),
    }  # fmt: skip
    write_results("scale", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m, ratios = r["machine"], r["ratios"]
    rows = []
    for name in ("small", "large"):
        p = r[name]
        cluster = p["cluster"]
        cells = (p["n"], p["wall_s"], p["evals_per_s"], cluster["rss_mb"], cluster["fds"],
                 p["client_peak_rss_mb"], p["store_mb"])  # fmt: skip
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join([
        "# How cost grows: 1,000 vs 10,000 evaluations (same run)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program `{r['program']}` through the "
        "Python client (`evaluate_many`, 16 in flight) and the HTTP API; cluster head + 2 "
        "executor nodes x 2 slots; results in SQLite.",
        "",
        "| evaluations | wall s | evals/s | cluster RSS MB after | cluster fds after | "
        "client peak RSS MB | store MB |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Idle cluster before: {r['idle']['cluster']['rss_mb']} MB RSS. Ratios large / small: "
        f"throughput **{ratios['throughput_large_vs_small']}**, cluster RSS "
        f"**{ratios['cluster_rss_after_large_vs_small']}**, client peak RSS "
        f"**{ratios['client_peak_rss_large_vs_small']}** (flat costs: ~1).",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
