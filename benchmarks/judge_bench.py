"""One 20-test stdio problem judged in one request versus the same 20 tests as 20 separate
evaluations: whole-machine CPU and wall time, same run, same backend.

    .venv/bin/python benchmarks/judge_bench.py [-n 5] [--backend runsc|docker ...]

Each arm runs the problem ``n`` times one after another through a SandboxRunner with no warm
pool, so every sandbox's boot and teardown is counted: *evaluations* runs each test as its own
evaluation (a fresh sandbox per test, a compiled language compiled per test, the output
compared by the caller); *judge* sends all 20 tests in one judge request (one fresh sandbox,
compiled once, a fresh process per test, compared on the host). The programs are a Python
and a C solution of the same problem (sum of the numbers on stdin). CPU is the whole machine's
busy time (``/proc/stat``), the idle rate subtracted. Writes benchmarks/results/judge.{json,md}.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, write_results

from crucible_ray.judge.judging import judge
from crucible_ray.judge.models import JudgeRequest
from crucible_ray.models import EvalRequest
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.runner import SandboxRunner

TESTS = 20
SOLUTIONS = {
    "python": "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n",
    "c": '#include <stdio.h>\nint main(void) { long long s = 0, x; while (scanf("%lld", &x) == 1)'
    ' s += x; printf("%lld\\n", s); return 0; }\n',
}


def problem(seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    tests = []
    for _ in range(TESTS):
        numbers = [rng.randint(-(10**9), 10**9) for _ in range(rng.randint(1, 200))]
        tests.append((" ".join(map(str, numbers)) + "\n", f"{sum(numbers)}\n"))
    return tests


def as_evaluations(runner: SandboxRunner, language: str, tests: list[tuple[str, str]]) -> int:
    passed = 0
    for stdin, expected in tests:
        result = runner.run(EvalRequest(language=language, code=SOLUTIONS[language], stdin=stdin))
        passed += result.status == "succeeded" and result.stdout.rstrip() == expected.rstrip()
    return passed


def as_judge(runner: SandboxRunner, language: str, tests: list[tuple[str, str]]) -> int:
    cases = [{"stdin": stdin, "expected_stdout": expected} for stdin, expected in tests]
    request = JudgeRequest(language=language, code=SOLUTIONS[language], tests=cases)
    result = judge(runner, request)
    if result.sandboxes != 1:
        raise RuntimeError(f"judge took {result.sandboxes} sandboxes")
    return result.passed


def measure(backend: str, n: int, state: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with SandboxRunner(SandboxPolicy(backend=backend), state_dir=state) as runner:
        for language in SOLUTIONS:
            as_judge(runner, language, problem(0))  # page cache and image checks: not timed
            for arm, run in (("evaluations", as_evaluations), ("judge", as_judge)):
                background = idle_rate(3.0)
                busy, started = busy_seconds(), time.monotonic()
                passed = sum(run(runner, language, problem(seed)) for seed in range(n))
                wall = time.monotonic() - started
                cpu = busy_seconds() - busy - background * wall
                if passed != n * TESTS:
                    raise RuntimeError(f"{backend} {language} {arm}: {passed}/{n * TESTS}")
                out[f"{language} {arm}"] = {
                    "problems": n, "tests": n * TESTS,
                    "cpu_s_per_problem": round(cpu / n, 3),
                    "wall_s_per_problem": round(wall / n, 3),
                    "cpu_ms_per_test": round(cpu / (n * TESTS) * 1000, 1),
                }  # fmt: skip
                print(backend, language, arm, out[f"{language} {arm}"], file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="problems per arm")
    parser.add_argument("--backend", action="append", choices=("runsc", "docker"))
    args = parser.parse_args()
    results: dict = {"machine": machine(), "n": args.n, "tests": TESTS, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="crucible-judge-bench-") as work:
        for name in args.backend or ("runsc", "docker"):
            results["backends"][name] = measure(name, args.n, Path(work) / name)
    write_results("judge", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [
        f"# One {r['tests']}-test problem: one judge request vs {r['tests']} evaluations",
        "",
        f"{r['machine']['date']}, {r['machine']['cpus']} cores, {r['machine']['runsc']}. "
        f"{r['n']} problems per arm, one after another, no warm pool (every boot counted). "
        "CPU is the whole machine's, idle rate subtracted. Every test passed in both arms.",
        "",
        "| backend | language | arm | CPU s/problem | wall s/problem | CPU ms/test |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for backend, arms in r["backends"].items():
        for label, v in arms.items():
            language, arm = label.split(" ")
            lines.append(f"| {backend} | {language} | {arm} | {v['cpu_s_per_problem']} | "
                         f"{v['wall_s_per_problem']} | {v['cpu_ms_per_test']} |")  # fmt: skip
        for language in SOLUTIONS:
            evals, judged = arms[f"{language} evaluations"], arms[f"{language} judge"]
            cpu = evals["cpu_s_per_problem"] / judged["cpu_s_per_problem"]
            wall = evals["wall_s_per_problem"] / judged["wall_s_per_problem"]
            ratios.append(f"- {backend}, {language}: one judge request uses **{cpu:.1f}x less "
                          f"CPU** and {wall:.1f}x less wall time than {r['tests']} evaluations "
                          "(target: >= 5x less CPU).")  # fmt: skip
    return "\n".join([*lines, "", *ratios]) + "\n"


if __name__ == "__main__":
    main()
