"""How many sandboxes to boot at once per core: boot throughput, latency and CPU per boot.

    .venv/bin/python benchmarks/boots_bench.py [-n 48] [--backend runsc|docker ...]

A warm pool refills with ``boot_workers`` boots in flight per actor; boots are CPU-bound (the
sentry's start), so too few leave cores idle between boots and too many only queue on them.
For each backend and each number of boots in flight k (per core: k / cores), ``n`` sandboxes
are booted through the backend seam (``prepare`` returns once the interpreter waits for code)
and destroyed at once, k at a time: boots/s, boot latency p50/p95 and the whole machine's CPU
per boot (``/proc/stat``, the idle rate subtracted). Writes benchmarks/results/boots.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, summary, write_results

from crucible_ray.languages import LANGUAGES
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.registry import make_backend

IN_FLIGHT = (1, 2, 3, 4, 6)


def boots(backend_name: str, n: int, work: Path) -> dict[str, dict]:
    backend = make_backend(backend_name)
    policy = SandboxPolicy(backend=backend_name)
    backend.check(policy)
    spec = LANGUAGES["python"]
    image = backend.image(spec)
    owner = owner_token()
    work_dir = work / backend_name / owner
    work_dir.mkdir(parents=True)

    def one(_: int) -> float:
        started = time.perf_counter()
        sandbox = backend.prepare(spec, policy, image, work_dir, owner)
        booted = time.perf_counter() - started
        backend.destroy(sandbox)
        return booted

    one(0)  # page cache, image verification: not timed
    levels = {}
    try:
        for k in IN_FLIGHT:
            background = idle_rate(3.0)
            busy, started = busy_seconds(), time.monotonic()
            with ThreadPoolExecutor(k) as pool:
                latencies = list(pool.map(one, range(n)))
            wall = time.monotonic() - started
            cpu = busy_seconds() - busy - background * wall
            levels[str(k)] = summary(latencies, wall) | {
                "boots_per_s": round(n / wall, 2),
                "cpu_ms_per_boot": round(cpu / n * 1000, 1),
            }
            print(backend_name, k, levels[str(k)], file=sys.stderr, flush=True)
    finally:
        backend.close()
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=48, help="boots per level")
    parser.add_argument("--backend", action="append", choices=("runsc", "docker"))
    args = parser.parse_args()
    results: dict = {"machine": machine(), "n": args.n, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="crucible-boots-") as work:
        for name in args.backend or ("runsc", "docker"):
            results["backends"][name] = boots(name, args.n, Path(work))
    write_results("boots", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    cores = r["machine"]["cpus"]
    lines = [
        "# Boots in flight per core: boot throughput, latency and CPU per boot",
        "",
        f"{r['machine']['date']}, {cores} cores, {r['machine']['runsc']}. N={r['n']} python "
        "sandboxes booted (until the interpreter waits for code) and destroyed per level; CPU "
        "= whole-machine busy time per boot, idle rate subtracted.",
        "",
        "| backend | boots in flight | per core | boots/s | boot p50 / p95 ms | CPU ms/boot |",
        "|---|---|---|---|---|---|",
    ]
    for name, levels in r["backends"].items():
        best = max(levels, key=lambda k: levels[k]["boots_per_s"])
        for k, v in levels.items():
            mark = " (best)" if k == best else ""
            lines.append(f"| {name} | {k}{mark} | {int(k) / cores:g} | {v['boots_per_s']} | "
                         f"{v['p50_ms']} / {v['p95_ms']} | {v['cpu_ms_per_boot']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
