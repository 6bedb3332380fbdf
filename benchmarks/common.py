"""Helpers shared by the benchmarks: percentiles, machine facts, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
