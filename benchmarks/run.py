"""The whole benchmark suite, one command: each benchmark in turn, then charts and a summary.

    .venv/bin/python benchmarks/run.py [--quick] [--only sandbox,peers,...]

Benchmarks, in order: sandbox (vs bare docker run, runc and runsc), peers (both backends vs
epicbox, llm-sandbox, Ray's sandbox and the raw container ceiling, with CPU per evaluation),
backends (CPU per fresh sandbox through the backend seam), boots (boots in flight per core),
execution (Ray layer vs sandbox layer),
http (end to end at concurrency 1-32), batch (batch command vs execution layer, driver
memory), scale (1,000 vs 10,000 evaluations), soak (10 minutes at saturation), cpu (where
the CPU goes per evaluation, by component), control_plane (the control plane alone, with
the benchmark-only null backend, vs real sandboxes), queue (the durable queue's cost in the store,
on PostgreSQL, vs today's store path), queue_plane (the queue plane vs the dispatcher, null
backend, 1/2/4 Dispatch actors), http_plane (the HTTP path on either plane, null backend,
1/2/4 ingress replicas), batch_plane (`crucible-ray batch` on either plane, real sandboxes),
dispatch_call (one claim call through a Serve
DeploymentHandle vs a named Ray actor, CPU per call by process). Each writes
benchmarks/results/<name>.{json,md}; then charts.py draws <name>.png and this writes
benchmarks/results/README.md: every headline ratio against its target. The full suite takes
about 80 minutes on 2 cores; --quick runs each one small (minutes, numbers not meaningful).
Do not run it beside the test suite: both need the machine (and the tests restart dockerd).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS

HERE = Path(__file__).resolve().parent
QUICK = {"sandbox": ["--quick"], "peers": ["--quick"], "execution": ["--quick"],
         "http": ["--quick"], "batch": ["--quick"], "scale": ["--small", "100", "--large", "500"],
         "soak": ["--minutes", "1", "--callers", "8"], "cpu": ["-n", "20"],
         "backends": ["-n", "20", "--no-extras"], "boots": ["-n", "8"],
         "languages": ["-n", "3"], "judge": ["-n", "1"], "humaneval": ["--limit", "10"],
         "monitoring": ["-n", "10"], "judge_batch": ["-n", "50"],
         "control_plane": ["-n", "200", "--real-n", "20"], "queue": ["-n", "300"],
         "queue_plane": ["-n", "400", "--real-n", "10"], "http_plane": ["-n", "100"],
         "batch_plane": ["--items", "60"], "dispatch_call": ["--quick"]}  # fmt: skip
ARGS = {"backends": ["--name", "backends"],
        "languages": ["--backend", "runsc", "--backend", "docker"]}  # always  # fmt: skip
SCRIPTS = {"sandbox": "sandbox_bench.py", "peers": "peers_bench.py",
           "backends": "runsc_backend.py", "boots": "boots_bench.py",
           "execution": "execution_bench.py", "http": "http_bench.py",
           "batch": "batch_bench.py", "scale": "scale_bench.py", "soak": "soak.py",
           "cpu": "cpu_profile.py", "languages": "languages_bench.py",
           "judge": "judge_bench.py", "humaneval": "humaneval_bench.py",
           "monitoring": "monitoring_bench.py", "judge_batch": "judge_batch_bench.py",
           "control_plane": "control_plane_bench.py", "queue": "queue_bench.py",
           "queue_plane": "queue_plane_bench.py", "http_plane": "http_plane_bench.py",
           "batch_plane": "batch_plane_bench.py",
           "dispatch_call": "dispatch_call_bench.py"}  # fmt: skip


def headline(name: str, r: dict) -> list[tuple[str, object, str]]:
    """(what, measured, target) rows for the summary."""
    if name == "sandbox":
        return [("sandbox p50 / bare docker run runsc (idle)", r["latency_ratio_p50"], "<= 0.5")]
    if name == "peers":
        return [(f"saturated throughput / best peer ({r['best_peer']})", r["ratio_vs_best_peer"],
                 ">= 2"),
                ("saturated throughput / raw container ceiling", r["ratio_vs_raw_ceiling"],
                 ">= 0.9"),
                ("CPU per evaluation, runsc backend / docker backend",
                 r.get("cpu_ratio_runsc_vs_docker_backend"), "<= 0.5")]  # fmt: skip
    if name == "backends":
        arms = r["arms"]
        ratios = [round(arms[f"runsc-erofs c={c}"]["cpu_ms"] / arms[f"docker-backend c={c}"]
                        ["cpu_ms"], 2) for c in (1, 2)]  # fmt: skip
        return [
            (
                "CPU per fresh sandbox, runsc (EROFS) / docker backend, c=1 / c=2",
                f"{ratios[0]} / {ratios[1]}",
                "<= 0.5",
            )
        ]
    if name == "boots":
        cores = r["machine"]["cpus"]
        rows = []
        for backend, levels in r["backends"].items():
            best = max(levels, key=lambda k: levels[k]["boots_per_s"])
            rows.append(
                (
                    f"{backend}: boots/s at the best boots in flight per core "
                    f"({int(best) / cores:g})",
                    levels[best]["boots_per_s"],
                    "(measure)",
                )
            )
        return rows
    if name == "execution":
        return [(f"Ray layer / sandbox layer at c={c}",
                 round(v["ray_layer"]["evals_per_s"] / v["sandbox_layer"]["evals_per_s"], 2),
                 ">= 0.9") for c, v in r["levels"].items()]  # fmt: skip
    if name == "http":
        x = r["ratios"]
        return [("HTTP end-to-end p50 / bare docker run runsc (idle)",
                 x["idle_p50_http_vs_bare_docker_run"], "<= 0.5"),
                ("saturated HTTP / sandbox layer", x["saturated_http_vs_sandbox_layer"], ">= 0.9"),
                ("saturated HTTP / bare docker run", x["saturated_http_vs_bare_docker_run"],
                 ">= 0.9")]  # fmt: skip
    if name == "batch":
        return [("batch / execution layer throughput", r["throughput_ratio"], ">= 0.9"),
                ("batch driver peak RSS, large / small", r["memory_ratio"], "~1")]  # fmt: skip
    if name == "scale":
        x = r["ratios"]
        return [("throughput, large / small", x["throughput_large_vs_small"], "~1"),
                ("cluster RSS after, large / small", x["cluster_rss_after_large_vs_small"], "~1"),
                ("client peak RSS, large / small", x["client_peak_rss_large_vs_small"],
                 "~1")]  # fmt: skip
    if name == "cpu":
        extra = r["http"]["total_cpu_ms_per_eval"] - r["sandbox_layer"]["total_cpu_ms_per_eval"]
        return [("CPU ms per evaluation: sandbox layer / HTTP end to end",
                 f"{r['sandbox_layer']['total_cpu_ms_per_eval']} / "
                 f"{r['http']['total_cpu_ms_per_eval']} (+{extra:.0f})", "(profile)")]  # fmt: skip
    if name == "languages":
        runsc = r["backends"].get("runsc", {})
        go, baseline = runsc.get("go"), runsc.get("go (go build)")
        rows = [(f"runsc: {label} result p50 ms (compile p50)",
                 f"{v['result_p50_ms']} ({v['compile_p50_ms'] or '-'})", "(measure)")
                for label, v in runsc.items() if label in ("python", "cpp", "java")]  # fmt: skip
        if go and baseline:
            rows.append(("runsc: Go compile stage, go build / direct compile+link",
                         round(baseline["compile_p50_ms"] / go["compile_p50_ms"], 2),
                         ">= 2"))  # fmt: skip
        numpy, bare = runsc.get("python-science: import numpy"), runsc.get("python-science")
        if numpy and bare:
            rows.append(("runsc: `import numpy` in the sandbox, ms",
                         round(numpy["run_p50_ms"] - bare["run_p50_ms"]), "(measure)"))  # fmt: skip
        return rows
    if name == "judge":
        rows = []
        for backend, arms in r["backends"].items():
            for language in ("python", "c"):
                evals, judged = arms[f"{language} evaluations"], arms[f"{language} judge"]
                ratio = evals["cpu_s_per_problem"] / judged["cpu_s_per_problem"]
                rows.append((f"{backend}, {language}: CPU of {r['tests']} evaluations / one judge"
                             " request", round(ratio, 1), ">= 5"))  # fmt: skip
        return rows
    if name == "judge_batch":
        rss = r["client_rss_mib"]
        p = r["in_system_s"]
        return [(f"{r['submissions']} x {r['tests_per_submission']} tests via judge_batch "
                 f"({r['language']}): tests/s", r["tests_per_s"], "(measure)"),
                ("judge_batch: time in the system p50 / p95 / p99, s",
                 f"{p['50']} / {p['95']} / {p['99']}", "(measure)"),
                ("judge_batch: client RSS, last tenth / first tenth of the run",
                 round(rss["last_tenth_max"] / rss["first_tenth_max"], 2), "~1")]  # fmt: skip
    if name == "control_plane":
        batch, http, real = r["null_batch"], r["null_http"], r["real_batch"]
        return [("control plane (null backend): dispatcher CPU ms per eval, batch path / HTTP",
                 f"{batch['cpu_ms_per_eval'].get('dispatcher')} / "
                 f"{http['cpu_ms_per_eval'].get('dispatcher')}", "<= 1.5"),
                ("control plane saturated evals/s / real sandboxes', batch path / HTTP",
                 f"{batch['evals_per_s'] / real['evals_per_s']:.1f} / "
                 f"{http['evals_per_s'] / real['evals_per_s']:.1f}", ">= 10")]  # fmt: skip
    if name == "queue":
        claim, today = r["claims"]["1x16"], r["today_store_path"]
        plane = r["admit_100"]["server_cpu_ms"] + claim["server_cpu_ms"]
        return [("store (PostgreSQL) CPU ms per eval, queue plane / today's three transactions",
                 f"{plane:.3f} / {today['server_cpu_ms']}", "informational"),
                ("claim + finish client CPU ms per eval, 16 per claim (a Dispatch replica's)",
                 claim["client_cpu_ms"], "informational")]  # fmt: skip
    if name == "queue_plane":
        best = max(r["queue_plane"], key=lambda phase: phase["evals_per_s"])
        real = r["real_dispatcher"]["evals_per_s"]
        old = r["null_dispatcher"]["cpu_ms_per_eval"].get("dispatcher")
        return [(f"queue plane ({best['dispatchers']} Dispatch), CPU ms per eval replacing the "
                 "dispatcher / the dispatcher's (null backend, batch path)",
                 f"{best['replaces_dispatcher_cpu_ms']} / {old}",
                 "<= 1.5"),
                ("queue plane saturated evals/s / real sandboxes'",
                 f"{best['evals_per_s'] / real:.1f}", ">= 10")]  # fmt: skip
    if name == "http_plane":
        by = {(p["plane"], p["replicas"]): p for p in r["phases"]}
        return [(f"HTTP evals/s, queue plane / dispatcher plane ({n} ingress replicas, null "
                 "backend)", round(by[("queue", n)]["evals_per_s"]
                                   / by[("dispatcher", n)]["evals_per_s"], 2), "informational")
                for n in sorted({p["replicas"] for p in r["phases"]})]  # fmt: skip
    if name == "batch_plane":
        return [("crucible-ray batch evals/s, queue plane / dispatcher plane (real sandboxes)",
                 r["throughput_ratio"], ">= 0.9")]  # fmt: skip
    if name == "dispatch_call":
        cases = r["cases"]
        return [(f"Serve handle call CPU-ms / actor call CPU-ms (1 replica, {claim}, c=1)",
                 f"{cases[f'Serve handle, 1 replica | {claim} | c=1']['cpu_ms_per_call']['total']}"
                 f" / {cases[f'named actor | {claim} | c=1']['cpu_ms_per_call']['total']}",
                 "informational") for claim in ("1 x 1 KiB", "16 x 4 KiB")]  # fmt: skip
    if name == "humaneval":
        rows = []
        for backend, arms in r["backends"].items():
            judged, broken = arms["judge canonical"], arms["judge broken"]
            rows.append((f"{backend}: canonical solutions AC / broken ones AC (of "
                         f"{judged['problems']})", f"{judged['passed']} / {broken['passed']}",
                         "all / 0"))  # fmt: skip
            rows.append((f"{backend}: CPU per problem, judge request / one evaluation",
                         round(judged["cpu_s_per_problem"]
                               / arms["evaluation canonical"]["cpu_s_per_problem"], 1),
                         "(measure)"))  # fmt: skip
        return rows
    if name == "monitoring":
        return [(f"{backend}: CPU per evaluation, runtime monitoring on / off (trivial program)",
                 round(programs["trivial"]["auto"]["cpu_ms_per_eval"]
                       / programs["trivial"]["off"]["cpu_ms_per_eval"], 2), "small")
                for backend, programs in r["backends"].items()]  # fmt: skip
    if name == "soak":
        lost = r["unfinished_count"] + r["unexpected_count"]
        return [("evaluations unaccounted for", lost, "0"),
                ("within growth bounds (RSS, fds, containers)", r["within_bounds"],
                 "True")]  # fmt: skip
    return []


def summary() -> str:
    lines = ["# Benchmark summary", "",
             "Each ratio compares two contenders measured in the same run on the same machine "
             "(details and machine facts in each <name>.md; charts in <name>.png).", "",
             "| benchmark | measure | result | target | run at |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name in SCRIPTS:
        source = RESULTS / f"{name}.json"
        if source.exists():
            r = json.loads(source.read_text())
            for what, value, target in headline(name, r):
                lines.append(f"| [{name}]({name}.md) | {what} | **{value}** | {target} | "
                             f"{r['machine']['date'][:16]} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each benchmark small (smoke run)")
    parser.add_argument("--only", default=",".join(SCRIPTS), help="comma-separated names")
    args = parser.parse_args()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(chosen) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; known: {', '.join(SCRIPTS)}")
    failed = []
    for name in chosen:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        extra = QUICK[name] if args.quick else []
        args_ = [*ARGS.get(name, []), *extra]
        child = subprocess.Popen([sys.executable, str(HERE / SCRIPTS[name]), *args_])
        try:
            child.wait()
        finally:  # stopped ourselves: stop the benchmark too (it takes its cluster down)
            if child.poll() is None:
                child.terminate()
                child.wait()
        print(f"== {name}: exit {child.returncode} after {time.monotonic() - started:.0f}s",
              flush=True)  # fmt: skip
        if child.returncode != 0:
            failed.append(name)
    subprocess.run([sys.executable, str(HERE / "charts.py")], check=True)
    (RESULTS / "README.md").write_text(summary())
    print(summary())
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
