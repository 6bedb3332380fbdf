"""Soak: minutes at saturation through HTTP, watching for leaks and lost evaluations.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--callers 16]

Starts its own local cluster (head + 2 executor nodes x 2 slots) and the HTTP service on port
8600, then runs closed-loop callers (more than the slots: saturated) through the real API with
a mix of programs (prints, failures, JavaScript, one-second timeouts). Every 15 s it samples the
sandbox containers, gVisor processes, and the open file descriptors and RSS of every process of
the cluster and of dockerd. At the end it waits for the queue to drain and checks that every
accepted evaluation has a final recorded result and that nothing grew beyond the bounds below.
Writes benchmarks/results/soak.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import local_service, machine, process_usage, write_results

PORT_OFFSET, HTTP_PORT = 500, 8600
SAMPLE_EVERY_S = 15.0
# Growth: the last minute against the second; containers: once idle, only the warm pools.
BOUNDS = {"rss_growth": 0.15, "fd_growth": 0.15, "extra_containers": 0}
PROGRAMS = [
    ({"code": "print(sum(range(1000)))"}, "succeeded"),
    ({"code": "import sys\nsys.exit(3)"}, "failed"),
    ({"code": "console.log(6 * 7)", "language": "javascript"}, "succeeded"),
    ({"code": "while True: pass", "timeout_s": 1}, "timed_out"),
    ({"code": "print(input()[::-1])", "stdin": "soak"}, "succeeded"),
]


def sample(state, dockerd: int) -> dict:
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=dev.crucible.managed"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    gvisor = subprocess.run(["pgrep", "-c", "-f", "runsc-sandbox"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    cluster = process_usage([n["pid"] for n in state.nodes])
    engine = process_usage([dockerd])
    return {"t": round(time.monotonic(), 1), "containers": len(containers),
            "gvisor_sandboxes": int(gvisor or 0), "cluster": cluster,
            "dockerd": engine}  # fmt: skip


def caller(url: str, token: str, stop: threading.Event, ledger: dict, lock: threading.Lock,
           start: int) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=180) as client:
        for i in itertools.count(start):
            if stop.is_set():
                return
            body, expected = PROGRAMS[i % len(PROGRAMS)]
            try:
                answer = client.post("/api/eval?wait=true", json=body)
            except httpx.HTTPError as exc:
                with lock:
                    ledger["transport_errors"].append(str(exc))
                continue
            with lock:
                ledger["answers"][answer.status_code] = ledger["answers"].get(answer.status_code,
                                                                              0) + 1  # fmt: skip
                if answer.status_code in (200, 202):
                    data = answer.json()
                    ledger["accepted"].append((data["id"], expected))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--callers", type=int, default=16)
    args = parser.parse_args()
    results: dict = {"machine": machine(), "minutes": args.minutes, "callers": args.callers,
                     "bounds": BOUNDS}  # fmt: skip
    dockerd = int(Path("/var/run/docker.pid").read_text())
    with local_service(PORT_OFFSET, HTTP_PORT, max_pending=args.callers) as service:
        results.update(soak(*service, dockerd, args))
    write_results("soak", results, render(results))
    print(render(results))


def soak(url: str, settings, state, dockerd: int, args) -> dict:
    from crucible_ray.api.auth import issue_token, signer_of

    warm_pool = 4  # 2 actors x 2 slots x 1 python sandbox booted ahead per slot
    deadline = time.monotonic() + 120
    while sample(state, dockerd)["containers"] < warm_pool and time.monotonic() < deadline:
        time.sleep(1)
    baseline = sample(state, dockerd)
    ledger: dict = {"answers": {}, "accepted": [], "transport_errors": []}
    lock, stop = threading.Lock(), threading.Event()
    token = issue_token(signer_of(settings), "soak", 3600 * 4)
    threads = [threading.Thread(target=caller, args=(url, token, stop, ledger, lock, n))
               for n in range(args.callers)]  # fmt: skip
    started = time.monotonic()
    for thread in threads:
        thread.start()
    samples = []
    while time.monotonic() - started < args.minutes * 60:
        time.sleep(SAMPLE_EVERY_S)
        samples.append(sample(state, dockerd))
        print(f"{len(ledger['accepted'])} accepted; {samples[-1]}", file=sys.stderr)
    stop.set()
    for thread in threads:
        thread.join(timeout=300)
    wall = time.monotonic() - started
    while httpx.get(f"{url}/healthz", timeout=10).json()["queued"]:
        time.sleep(1)
    time.sleep(5)  # warm pools refilled
    after = sample(state, dockerd)
    return {"wall_s": round(wall, 1), "evals_per_s": round(len(ledger["accepted"]) / wall, 2),
            "warm_pool": warm_pool,
            "answers": ledger["answers"], "transport_errors": ledger["transport_errors"][:20],
            **account(url, token, ledger["accepted"]),
            **growth(samples, baseline, after, warm_pool)}  # fmt: skip


def account(url: str, token: str, accepted: list[tuple[str, str]]) -> dict:
    """Every accepted evaluation has a final recorded result, and the status it should have."""
    headers = {"Authorization": f"Bearer {token}"}
    outcomes: dict[str, int] = {}
    unfinished, unexpected = [], []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for eval_id, expected in accepted:
            record = client.get(f"/api/eval/{eval_id}").json()
            outcomes[record["status"]] = outcomes.get(record["status"], 0) + 1
            if record["status"] in ("queued", "running"):
                unfinished.append(eval_id)
            elif record["status"] != expected:
                unexpected.append({"id": eval_id, "expected": expected, "got": record["status"],
                                   "error": record.get("error")})  # fmt: skip
    return {"accepted": len(accepted), "recorded_outcomes": outcomes,
            "unfinished": unfinished[:20], "unfinished_count": len(unfinished),
            "unexpected": unexpected[:20], "unexpected_count": len(unexpected)}  # fmt: skip


def growth(samples: list[dict], baseline: dict, after: dict, warm_pool: int) -> dict:
    per_minute = max(1, int(60 / SAMPLE_EVERY_S))
    early, late = samples[per_minute : 2 * per_minute] or samples[:1], samples[-per_minute:]

    def mean(window: list[dict], part: str, key: str) -> float:
        return statistics.fmean(s[part][key] for s in window)

    report = {"baseline": baseline, "after": after, "samples": samples}
    for part in ("cluster", "dockerd"):
        for key in ("rss_mb", "fds"):
            first, last = mean(early, part, key), mean(late, part, key)
            report[f"{part}_{key}_growth"] = round((last - first) / first, 3) if first else 0.0
    report["extra_containers"] = after["containers"] - warm_pool  # idle: only the warm pools
    report["within_bounds"] = (
        all(report[f"{p}_rss_mb_growth"] <= BOUNDS["rss_growth"] for p in ("cluster", "dockerd"))
        and all(report[f"{p}_fds_growth"] <= BOUNDS["fd_growth"] for p in ("cluster", "dockerd"))
        and report["extra_containers"] <= BOUNDS["extra_containers"]
    )
    return report


def render(r: dict) -> str:
    m = r["machine"]
    verdict = "yes" if r["within_bounds"] and not r["unfinished_count"] else "**NO**"
    return "\n".join([
        "# Soak: saturation through HTTP",
        "",
        f"{m['date']}, {m['cpus']} cores, {m['runsc']}. {r['minutes']:g} minutes, {r['callers']}"
        " closed-loop callers (4 slots: saturated), 2 ingress replicas, programs mixed"
        " (prints, exit 3, JavaScript, 1 s timeouts, stdin).",
        "",
        f"- accepted **{r['accepted']}** evaluations ({r['evals_per_s']}/s); HTTP answers "
        f"{r['answers']}; transport errors {len(r['transport_errors'])}",
        f"- recorded outcomes {r['recorded_outcomes']}; unfinished **{r['unfinished_count']}**; "
        f"status other than expected **{r['unexpected_count']}**",
        f"- sandbox containers before/after: {r['baseline']['containers']} / "
        f"{r['after']['containers']} (the warm pools hold {r['warm_pool']}); gVisor sandboxes "
        f"after: {r['after']['gvisor_sandboxes']}",
        f"- growth from the 2nd minute to the last (bound {BOUNDS['rss_growth']:.0%}): cluster RSS "
        f"{r['cluster_rss_mb_growth']:+.1%}, cluster fds {r['cluster_fds_growth']:+.1%}, dockerd "
        f"RSS {r['dockerd_rss_mb_growth']:+.1%}, dockerd fds {r['dockerd_fds_growth']:+.1%}",
        f"- cluster processes before/after: {r['baseline']['cluster']['processes']} / "
        f"{r['after']['cluster']['processes']}; RSS {r['baseline']['cluster']['rss_mb']} / "
        f"{r['after']['cluster']['rss_mb']} MB; fds {r['baseline']['cluster']['fds']} / "
        f"{r['after']['cluster']['fds']}",
        "",
        f"Everything accounted for and within bounds: {verdict}",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
