"""Helpers shared by the benchmarks: percentiles, machine facts, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so that finally blocks take clusters and services down


signal.signal(signal.SIGTERM, _stop)


_TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """Whole-machine busy CPU seconds since boot (``/proc/stat``): daemons and sandboxes too."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def idle_rate(seconds: float = 5.0) -> float:
    """Busy CPU seconds per second with nothing measured running: subtracted from each arm."""
    before, t = busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (busy_seconds() - before) / (time.monotonic() - t)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    return {
        "n": len(latencies_s),
        "p50_ms": round(percentile(latencies_s, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies_s, 95) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies_s) * 1000, 1),
        "evals_per_s": round(len(latencies_s) / wall_s, 2),
    }


def machine() -> dict[str, object]:
    def version(cmd: list[str]) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        return out.splitlines()[0] if out else "unknown"

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "runsc": version(["runsc", "--version"]),
        "dockerd": version(["dockerd", "--version"]),
    }


def write_results(name: str, data: dict, markdown: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)


def levels_table(levels: dict[str, dict], baseline: str, candidate: str,
                 names: tuple[str, str]) -> list[str]:  # fmt: skip
    """Markdown rows comparing two contenders per concurrency level (ratio = candidate/base)."""
    base_name, cand_name = names
    rows = [
        f"| concurrency | {base_name} evals/s | {cand_name} evals/s | ratio "
        f"| {base_name} p50/p95 ms | {cand_name} p50/p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for c, level in levels.items():
        b, x = level[baseline], level[candidate]
        rows.append(
            f"| {c} | {b['evals_per_s']} | {x['evals_per_s']} | "
            f"{x['evals_per_s'] / b['evals_per_s']:.2f} | {b['p50_ms']}/{b['p95_ms']} | "
            f"{x['p50_ms']}/{x['p95_ms']} |"
        )
    return rows


@contextlib.contextmanager
def local_service(
    port_offset: int, http_port: int, *, slots: int = 2, actors: int = 2, max_pending: int,
    replicas: int = 2,
) -> Iterator[tuple[str, Any, Any]]:  # fmt: skip
    """A local cluster (head + ``actors`` executor nodes) beside any other, with the HTTP service
    deployed on ``http_port`` (results in SQLite, rate limit out of the way); yields the URL,
    the Settings and the cluster's state, and takes everything down afterwards."""
    import httpx

    from crucible_ray.api.deployment import deploy, undeploy
    from crucible_ray.cluster import local
    from crucible_ray.execution import DispatcherConfig
    from crucible_ray.settings import Settings

    with tempfile.TemporaryDirectory() as state_dir, tempfile.TemporaryDirectory() as data:
        state = local.up(executors=actors, slots=slots, state_dir=Path(state_dir),
                         port_offset=port_offset)  # fmt: skip
        try:
            local.connect(Path(state_dir))
            config = DispatcherConfig(slots_per_actor=slots, min_actors=actors, max_actors=actors,
                                      max_pending=max_pending)  # fmt: skip
            settings = Settings(state_dir=Path(data), port=http_port, dispatcher=config,
                                rate_limit_per_minute=1_000_000)  # fmt: skip
            deploy(settings, num_replicas=replicas)
            url = f"http://127.0.0.1:{http_port}"
            deadline = time.monotonic() + 180
            while httpx.get(f"{url}/healthz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the service never became healthy"
                time.sleep(1)
            yield url, settings, state
        finally:
            with contextlib.suppress(Exception):
                undeploy()
            local.down(Path(state_dir))


def timed(fn: Any) -> Any:
    """``fn`` made to return its own wall time in seconds (what the load loops collect)."""

    def run() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return run


def process_usage(roots: list[int]) -> dict[str, float]:
    from crucible_ray.cluster.processes import descendants

    pids = {p for root in roots for p in descendants(root)}
    rss_kb = fds = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kb += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            continue  # exited meanwhile
    return {"processes": len(pids), "rss_mb": round(rss_kb / 1024, 1), "fds": fds}
