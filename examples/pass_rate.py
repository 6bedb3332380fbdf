"""A researcher's flow: a hundred candidate solutions, run with their tests, scored.

    export CRUCIBLE_URL=http://127.0.0.1:8000 CRUCIBLE_TOKEN=$(crucible-ray token --user me)
    python examples/pass_rate.py

Each candidate is run together with its problem's tests (plain asserts); it passes when the
program exits 0. Prints a table per problem and, last, one JSON line with the totals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from crucible_ray import Client

PROBLEMS = Path(__file__).with_name("problems.jsonl")
CANDIDATES_PER_PROBLEM = 10


def candidates():
    """Ten candidates per problem (its variants, repeated), each with the problem's tests."""
    for line in PROBLEMS.read_text().splitlines():
        problem = json.loads(line)
        for n in range(CANDIDATES_PER_PROBLEM):
            solution = problem["candidates"][n % len(problem["candidates"])]
            yield {
                "code": f"{solution}\n\n{problem['tests']}\n",
                "timeout_s": 5,  # a candidate that loops forever is cut off, not waited for
                "metadata": {"problem": problem["problem"], "candidate": n},
            }


def main() -> None:
    outcomes: dict[str, list[str]] = defaultdict(list)
    with Client() as client:  # CRUCIBLE_URL and CRUCIBLE_TOKEN
        for result in client.evaluate_many(candidates(), concurrency=16):
            outcomes[result.metadata["problem"]].append(result.status.value)

    table = Table(title="pass rate by problem")
    for column in ("problem", "passed", "failed", "timed out", "pass rate"):
        table.add_column(column, justify="left" if column == "problem" else "right")
    for problem, statuses in sorted(outcomes.items()):
        passed, failed = statuses.count("succeeded"), statuses.count("failed")
        rate = f"{passed / len(statuses):.0%}"
        table.add_row(problem, str(passed), str(failed), str(statuses.count("timed_out")), rate)
    Console().print(table)

    every = [s for statuses in outcomes.values() for s in statuses]
    passed = every.count("succeeded")
    print(f"overall pass rate: {passed / len(every):.1%} of {len(every)} candidates")
    print(json.dumps({"evaluated": len(every), "passed": passed,
                      "errors": every.count("error")}))  # fmt: skip


if __name__ == "__main__":
    main()
