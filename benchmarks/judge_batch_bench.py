"""A batch of many submissions x 20 tests judged through the HTTP API with
``iter_judge_batch``: tests per second, each judging's time and time in the system
(p50/p95/p99), and the client's memory over the run (it must stay flat: the input is read
lazily, a bounded window is in flight and each result is handed over as it ends).

    .venv/bin/python benchmarks/judge_batch_bench.py [-n 1000] [--language python]

Starts its own local cluster (head + 2 executor nodes x 2 slots) with the HTTP service on port
8800 (two ingress replicas, results in SQLite, admission limit 64). The test set (one 20-test
stdio problem: the sum of up to 200 numbers) is stored once with ``upload_testset``; the ``n``
submissions are distinct (a comment of their own: nothing deduplicated), one in ten wrong, and
every test runs (``stop_on_first_failure`` off). The client runs in a process of its own,
sampling its own resident memory every 0.5 s. Whole-machine CPU from ``/proc/stat``, the idle
rate subtracted. Writes benchmarks/results/judge_batch.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, local_service, machine, percentile, write_results
from judge_bench import SOLUTIONS, TESTS, problem

PORT_OFFSET, HTTP_PORT = 700, 8800
WRONG = {"python": "print(0)\n", "c": '#include <stdio.h>\nint main(void) { puts("0"); }\n'}

CLIENT = r"""
import json, sys, threading, time
from crucible_ray.client import Client

url, token, language, n, comment, window = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5],
                                                           int(sys.argv[6])]
right, wrong, tests = json.loads(sys.stdin.read())
rss = []
def sample():
    while True:
        with open("/proc/self/status") as f:
            rss.append(int(next(l for l in f if l.startswith("VmRSS")).split()[1]))
        time.sleep(0.5)
threading.Thread(target=sample, daemon=True).start()
codes = ((wrong if i % 10 == 9 else right) + f"\n{comment} submission {i}\n" for i in range(n))
with Client(url, token, deadline_s=7200) as client:
    testset = client.upload_testset(tests).id
    started = time.monotonic()
    results = [  # a few numbers per result: the client's own memory is what is measured
        {"verdict": r.verdict, "tests": len(r.tests), "duration_ms": r.duration_ms,
         "sojourn_ms": (r.finished_at - r.created_at).total_seconds() * 1000}
        for _, r in client.iter_judge_batch(codes, testset=testset,
                                            language=language, window=window,
                                            stop_on_first_failure=False, progress=False)]
    wall = time.monotonic() - started
print(json.dumps({"wall_s": wall, "rss_kb": rss, "results": results}))
"""


def run(n: int, language: str, window: int) -> dict:
    tests = [{"stdin": stdin, "expected_stdout": expected} for stdin, expected in problem(0)]
    comment = "//" if language == "c" else "#"
    payload = json.dumps([SOLUTIONS[language], WRONG[language], tests])
    with local_service(PORT_OFFSET, HTTP_PORT, max_pending=64) as (url, settings, _):
        from crucible_ray.api.auth import issue_token, signer_of

        token = issue_token(signer_of(settings), "bench", 7200)
        time.sleep(5)  # warm pools filled
        background = idle_rate(5.0)
        busy, started = busy_seconds(), time.monotonic()
        client = subprocess.run(
            [sys.executable, "-c", CLIENT, url, token, language, str(n), comment, str(window)],
            input=payload, capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        cpu = busy_seconds() - busy - background * wall
        # Measured: summarise now (the cluster's teardown may end this process, see below).
        measured = summary(n, language, json.loads(client.stdout), cpu) | {"window": window}
        return written({"machine": machine(), **measured})


def summary(n: int, language: str, out: dict, cpu: float) -> dict:
    results = out["results"]
    verdicts = [r["verdict"] for r in results]
    expected_wrong = sum(1 for i in range(n) if i % 10 == 9)
    if verdicts.count("WA") != expected_wrong or verdicts.count("AC") != n - expected_wrong:
        raise RuntimeError(
            f"unexpected verdicts: { {v: verdicts.count(v) for v in set(verdicts)} }"
        )
    ran = sum(r["tests"] for r in results)
    durations = [r["duration_ms"] / 1000 for r in results]
    sojourns = [r["sojourn_ms"] / 1000 for r in results]
    rss = out["rss_kb"]
    tenth = max(1, len(rss) // 10)
    return {
        "language": language, "submissions": n, "tests_per_submission": TESTS, "tests_run": ran,
        "wall_s": round(out["wall_s"], 1), "tests_per_s": round(ran / out["wall_s"], 1),
        "judgings_per_s": round(n / out["wall_s"], 2),
        "cpu_s_per_judging": round(cpu / n, 3), "cpu_ms_per_test": round(cpu / ran * 1000, 1),
        "judging_s": {str(q): round(percentile(durations, q), 2) for q in (50, 95, 99)},
        "in_system_s": {str(q): round(percentile(sojourns, q), 1) for q in (50, 95, 99)},
        "client_rss_mib": {
            "first_tenth_max": round(max(rss[:tenth]) / 1024, 1),
            "last_tenth_max": round(max(rss[-tenth:]) / 1024, 1),
            "max": round(max(rss) / 1024, 1), "samples": len(rss),
            "series": [round(kb / 1024, 1) for kb in rss[:: max(1, len(rss) // 200)]],
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="submissions")
    parser.add_argument("--language", default="python", choices=sorted(SOLUTIONS))
    parser.add_argument(
        "--window",
        type=int,
        default=16,
        help="distinct submissions in flight (4 slots: 12 wait queued)",
    )
    args = parser.parse_args()
    results = run(args.n, args.language, args.window)
    print(render(results))


def written(results: dict) -> dict:
    """Write the results at once: a Ray driver whose cluster is torn down ends its process
    within a minute, which a long teardown can reach before anything after it runs."""
    write_results("judge_batch", results, render(results))
    return results


def render(r: dict) -> str:
    m, rss = r["machine"], r["client_rss_mib"]
    return "\n".join([
        f"# {r['submissions']} submissions x {r['tests_per_submission']} tests through "
        "`iter_judge_batch` (HTTP)",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. {r['language']}: one stored test set, "
        f"{r['submissions']} distinct submissions (one in ten wrong), every test run; cluster "
        "head + 2 executor nodes x 2 slots on this machine, admission limit 64; the client "
        f"reads the submissions lazily and keeps {r.get('window', '?')} distinct ones in "
        "flight, handing each result over as it ends.",
        "",
        "| tests run | wall s | tests/s | judgings/s | CPU s per judging | CPU ms per test |",
        "|---|---|---|---|---|---|",
        f"| {r['tests_run']} | {r['wall_s']} | **{r['tests_per_s']}** | {r['judgings_per_s']} | "
        f"{r['cpu_s_per_judging']} | {r['cpu_ms_per_test']} |",
        "",
        "| per judging | p50 | p95 | p99 |",
        "|---|---|---|---|",
        "| its own time (sandbox boot to verdict), s | "
        + " | ".join(str(r["judging_s"][q]) for q in ("50", "95", "99")) + " |",
        "| time in the system (admitted to verdict, queueing included), s | "
        + " | ".join(str(r["in_system_s"][q]) for q in ("50", "95", "99")) + " |",
        "",
        f"Client memory (its own process, {rss['samples']} samples): max {rss['first_tenth_max']}"
        f" MiB in the first tenth of the run, {rss['last_tenth_max']} MiB in the last, "
        f"{rss['max']} MiB overall.",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
