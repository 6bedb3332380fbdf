"""`crucible-ray batch` versus the Ray execution layer alone, and the batch driver's memory.

    .venv/bin/python benchmarks/batch_bench.py [--items 2000] [--memory-items 20000] [--quick]

Starts its own local cluster (a head and two executor nodes, two slots each, beside any
cluster already running). Then, with the same number of evaluations in flight (the
dispatcher's admission limit):
  (a) baseline: ExecutionClient.run in a closed loop from that many threads;
  (b) the `crucible-ray batch` command on a JSON Lines file of the same programs (its own
      process: Ray driver start-up included in its wall time).
The driver's peak RSS comes from wait4() on the batch process, for --items and for
--memory-items programs. Writes benchmarks/results/batch.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_results

from crucible_ray import EvalRequest
from crucible_ray.cluster import local

CODE = "print(sum(range(1000)))\n"
EXPECTED = "499500\n"
PORT_OFFSET = 400
CLI = str(Path(sys.executable).with_name("crucible-ray"))


def baseline(client, n: int, in_flight: int) -> dict:
    def one(_: int) -> None:
        result = client.run(EvalRequest(code=CODE))
        assert result.stdout == EXPECTED, result

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - started
    return {"n": n, "wall_s": round(wall, 1), "evals_per_s": round(n / wall, 2)}


def batch_job(n: int, work: Path, env: dict[str, str]) -> dict:
    source, output = work / f"in-{n}.jsonl", work / f"out-{n}.jsonl"
    with source.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "code": CODE}) + "\n")
    started = time.perf_counter()
    process = subprocess.Popen([CLI, "batch", str(source), "-o", str(output), "--overwrite",
                                "--no-progress", "--json"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    assert os.waitstatus_to_exitcode(status) == 0, stderr.decode()
    summary = json.loads(stdout)
    assert summary["by_status"] == {"succeeded": n}, summary
    with output.open() as f:
        assert sum(1 for line in f if json.loads(line)["stdout"] == EXPECTED) == n
    return {"n": n, "wall_s": round(wall, 1), "evals_per_s": round(n / wall, 2),
            "job_evals_per_s": summary["per_second"],
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--memory-items", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="200 and 1000 items (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.memory_items = 200, 1000
    results: dict = {"machine": machine(), "program": CODE.strip()}
    with tempfile.TemporaryDirectory() as state_dir, tempfile.TemporaryDirectory() as work:
        state = local.up(executors=2, slots=2, state_dir=Path(state_dir), port_offset=PORT_OFFSET)
        try:
            local.connect(Path(state_dir))
            from crucible_ray.execution import DispatcherConfig, ExecutionClient, get_dispatcher

            config = DispatcherConfig(slots_per_actor=2, min_actors=2, max_actors=2)
            client = ExecutionClient(get_dispatcher(config, replace=True))
            while client.stats()["slots_ready"] < 4:
                time.sleep(0.5)
            in_flight = config.admission_limit
            results["in_flight"] = in_flight
            client.run(EvalRequest(code=CODE))  # warm
            results["execution_layer"] = baseline(client, args.items, in_flight)
            print(f"execution layer: {results['execution_layer']}", file=sys.stderr)
            results["batch"] = batch_job(args.items, Path(work), state.env())
            print(f"batch: {results['batch']}", file=sys.stderr)
            results["batch_large"] = batch_job(args.memory_items, Path(work), state.env())
            print(f"batch (large): {results['batch_large']}", file=sys.stderr)
            from crucible_ray.execution.client import stop_dispatcher

            stop_dispatcher()
        finally:
            local.down(Path(state_dir))
    results["throughput_ratio"] = round(
        results["batch"]["evals_per_s"] / results["execution_layer"]["evals_per_s"], 3
    )
    results["memory_ratio"] = round(
        results["batch_large"]["peak_rss_mb"] / results["batch"]["peak_rss_mb"], 3
    )
    write_results("batch", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    m, base, small, large = r["machine"], r["execution_layer"], r["batch"], r["batch_large"]
    return "\n".join([
        "# `crucible-ray batch` vs the Ray execution layer alone (same run)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. Program: `{r['program']}`. Cluster: "
        f"head + 2 executor nodes x 2 slots on the same machine; {r['in_flight']} in flight.",
        "",
        "| | programs | wall s | evals/s |",
        "|---|---|---|---|",
        f"| execution layer (ExecutionClient, {r['in_flight']} threads) | {base['n']} "
        f"| {base['wall_s']} | {base['evals_per_s']} |",
        f"| batch command (process start included) | {small['n']} | {small['wall_s']} "
        f"| {small['evals_per_s']} |",
        "",
        f"**Throughput ratio batch / execution layer: {r['throughput_ratio']}** (target >= 0.9).",
        "",
        "| batch driver | programs | peak RSS MB |",
        "|---|---|---|",
        f"| small | {small['n']} | {small['peak_rss_mb']} |",
        f"| large | {large['n']} | {large['peak_rss_mb']} |",
        "",
        f"**Peak memory ratio large / small: {r['memory_ratio']}** (target: flat, ~1.0).",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
