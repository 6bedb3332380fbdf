"""Hello world in each language: start-to-result latency and CPU per evaluation, compile stage
included and apart; and the python-science image's import time of numpy and pandas.

    .venv/bin/python benchmarks/languages_bench.py [-n 15] [--backend runsc|docker ...]

For each backend and language, ``n`` evaluations one after another through the backend seam:
boot a fresh sandbox (``prepare``), run the hello world (``execute``: the compile stage, then the
run), destroy it. Reported per language: boot p50; the result p50 (``execute``: what a caller
waits for when a warm pool booted the sandbox ahead); the compile stage's and the run's own
p50; and the whole machine's CPU per evaluation, boot and teardown included (``/proc/stat``,
the idle rate subtracted). ``go (go build)`` is the baseline in the same run: Go compiled by
``go build`` as before the direct compile/link path (languages.py). Writes
benchmarks/results/languages.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, percentile, write_results

from crucible_ray.languages import IMAGES, LANGUAGES, LanguageSpec
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.backend import Program
from crucible_ray.sandbox.owners import owner_token
from crucible_ray.sandbox.registry import make_backend

HELLO = {
    "python": 'print("hello")',
    "javascript": 'console.log("hello")',
    "go": 'package main\nimport "fmt"\nfunc main() { fmt.Println("hello") }',
    "c": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }',
    "cpp": '#include <bits/stdc++.h>\nint main() { std::cout << "hello" << std::endl; }',
    "java": "public class Main { public static void main(String[] a) {"
    ' System.out.println("hello"); } }',
    "rust": 'fn main() { println!("hello"); }',
}


def go_build_spec() -> LanguageSpec:
    """Go as it was compiled before: `go build`, with its staleness checks of the std."""
    go = LANGUAGES["go"]
    command = "mkdir -p .cache/tmp && GOTMPDIR=/build/.cache/tmp GOMEMLIMIT=off"
    command += " go build -o main main.go"
    stage = dataclasses.replace(go.compile, command=command)
    launch = (*go.command[:3], command, *stage.run)
    return dataclasses.replace(go, compile=stage, command=launch)


def cases() -> dict[str, tuple[LanguageSpec, str]]:
    """label -> (image, program): hello world per language; the science image bare, then
    importing numpy and pandas (the import time inside the sandbox); the Go baseline."""
    chosen = {name: (spec, HELLO[name]) for name, spec in LANGUAGES.items() if name in HELLO}
    science = IMAGES["python-science"]
    chosen["python-science"] = (science, HELLO["python"])
    for module in ("numpy", "pandas"):
        chosen[f"python-science: import {module}"] = (
            science,
            f"import {module}\n{HELLO['python']}",
        )
    chosen["go (go build)"] = (go_build_spec(), HELLO["go"])
    return chosen


def measure(backend_name: str, n: int, work: Path) -> dict[str, dict]:
    backend = make_backend(backend_name)
    policy = SandboxPolicy(backend=backend_name)
    backend.check(policy)
    owner = owner_token()
    work_dir = work / backend_name / owner
    work_dir.mkdir(parents=True)
    results = {}
    try:
        for label, (spec, code) in cases().items():
            image = backend.image(spec)

            def one(spec: LanguageSpec = spec, image: str = image, code: str = code
                    ) -> tuple[float, ...]:  # fmt: skip
                return evaluate(backend, spec, code, policy, image, work_dir, owner)

            one()  # page cache, image verification: not timed
            background = idle_rate(3.0)
            busy, started = busy_seconds(), time.monotonic()
            rows = [one() for _ in range(n)]
            wall = time.monotonic() - started
            cpu = busy_seconds() - busy - background * wall
            boot, result, compiled, ran = (list(column) for column in zip(*rows, strict=True))
            results[label] = {
                "n": n,
                "boot_p50_ms": _ms(percentile(boot, 50)),
                "result_p50_ms": _ms(percentile(result, 50)),
                "result_p95_ms": _ms(percentile(result, 95)),
                "compile_p50_ms": _ms(percentile(compiled, 50)) if any(compiled) else None,
                "run_p50_ms": _ms(percentile(ran, 50)),
                "cpu_ms_per_eval": _ms(cpu / n),
                "mean_total_ms": _ms(statistics.fmean(boot) + statistics.fmean(result)),
            }
            print(backend_name, label, results[label], file=sys.stderr, flush=True)
    finally:
        backend.close()
    return results


def evaluate(backend, spec, code, policy, image, work_dir, owner) -> tuple[float, ...]:
    """One program in a fresh sandbox: (boot, result, compile stage, run) seconds."""
    policy = policy.for_language(spec.policy_overrides)
    started = time.perf_counter()
    sandbox = backend.prepare(spec, policy, image, work_dir, owner)
    booted = time.perf_counter()
    try:
        outcome = backend.execute(sandbox, Program(code.encode(), b"", 30))
    finally:
        backend.destroy(sandbox)
    if outcome.stdout != "hello\n":
        raise RuntimeError(f"{spec.name}: {outcome}")
    compiled = outcome.compile.duration_ms / 1000 if outcome.compile else 0.0
    return booted - started, time.perf_counter() - booted, compiled, outcome.duration_ms / 1000


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="evaluations per language")
    parser.add_argument("--backend", action="append", choices=("runsc", "docker"))
    args = parser.parse_args()
    results: dict = {"machine": machine(), "n": args.n, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="crucible-languages-") as work:
        for name in args.backend or ("runsc",):
            results["backends"][name] = measure(name, args.n, Path(work))
    write_results("languages", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [
        "# Hello world per language: start-to-result latency and CPU per evaluation",
        "",
        f"{r['machine']['date']}, {r['machine']['cpus']} cores, {r['machine']['runsc']}. "
        f"N={r['n']} evaluations per language, one after another: a fresh sandbox each "
        "(boot), the compile stage and the run (result), teardown. *result* is what a caller "
        "waits for when the warm pool booted the sandbox ahead; CPU is the whole machine's per "
        "evaluation, boot and teardown included, idle rate subtracted. `go (go build)` is the "
        "baseline in the same run: Go built by `go build` (before the direct compile/link).",
        "",
        "| backend | language | result p50 / p95 ms | compile p50 ms | run p50 ms | boot p50 ms"
        " | CPU ms/eval |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, languages in r["backends"].items():
        for label, v in languages.items():
            compiled = "-" if v["compile_p50_ms"] is None else v["compile_p50_ms"]
            lines.append(f"| {name} | {label} | {v['result_p50_ms']} / {v['result_p95_ms']} | "
                         f"{compiled} | {v['run_p50_ms']} | {v['boot_p50_ms']} | "
                         f"{v['cpu_ms_per_eval']} |")  # fmt: skip
    for name, languages in r["backends"].items():
        bare = languages.get("python-science")
        for module in ("numpy", "pandas"):
            imported = languages.get(f"python-science: import {module}")
            if bare and imported:
                cost = imported["run_p50_ms"] - bare["run_p50_ms"]
                lines += ["", f"{name}: `import {module}` in the sandbox takes {cost:.0f} ms "
                          f"(run p50 {imported['run_p50_ms']} ms vs {bare['run_p50_ms']} ms "
                          "for the same image's hello world)."]  # fmt: skip
        go, before = languages.get("go"), languages.get("go (go build)")
        if go and before:
            ratio = before["compile_p50_ms"] / go["compile_p50_ms"]
            lines += ["", f"{name}: Go's compile stage takes {go['compile_p50_ms']} ms, "
                      f"{before['compile_p50_ms']} ms with `go build` ({ratio:.1f}x)."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
