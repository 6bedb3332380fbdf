"""``crucible-ray batch``: a high-volume job straight on the cluster's executor pool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    err_console,
    reported_errors,
)
from crucible_ray.cli.judging import (
    CaseOpt,
    CompareOpt,
    CpuOpt,
    EntryPointOpt,
    KeepGoingOpt,
    ModeOpt,
    ScoringOpt,
    judge_options,
    read_tests,
)


def batch(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="JSON Lines (.jsonl) or Parquet (.parquet)")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="results, JSON Lines")],
    resume: Annotated[
        bool, typer.Option("--resume", help="skip ids already in OUTPUT and append the rest")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start OUTPUT afresh")] = False,
    window: Annotated[
        int | None,
        typer.Option(min=1, help="evaluations in flight (default: the admission limit)"),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Ray cluster (default: the local cluster)"),
    ] = None,
    unavailable_timeout: Annotated[
        float, typer.Option(help="give up after this long without admission (resume later)")
    ] = 300.0,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="default: on a terminal")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    judge: Annotated[
        bool, typer.Option("--judge", help="judge each line against tests (implied by --tests)")
    ] = False,
    tests: Annotated[
        Path | None,
        typer.Option(
            "--tests",
            "-t",
            help="--judge: the tests of every line without its own"
            " (a JSON array or JSON Lines, as for `judge`)",
        ),
    ] = None,
    mode: ModeOpt = "stdio",
    entry_point: EntryPointOpt = None,
    compare: CompareOpt = None,
    case_insensitive: CaseOpt = False,
    cpu_s: CpuOpt = 2.0,
    keep_going: KeepGoingOpt = False,
    scoring: ScoringOpt = "pass_fail",
) -> None:
    """Evaluate (or, with --judge, judge) every line of INPUT on the cluster, streaming
    results to OUTPUT.

    Each input line is {"id", "code", "language", "stdin"?, "timeout_s"?, "metadata"?}; each
    output line is the EvalResult with your id (eval_id is the cluster's). With --judge each
    line is a judge request ({"id", "code", "tests"?, "metadata"?...}: the options below and
    --tests fill what a line leaves out) and each output line its JudgeResult. Results are
    flushed as they finish; after a crash or Ctrl-C, --resume continues where it stopped.
    Exits 0 when every line was evaluated, 2 when some lines were invalid or duplicated (the
    rest were evaluated), 3 when the cluster could not take work, 130 when interrupted."""
    from crucible_ray.batch import BatchError, BatchJob, ResultsFile, count_items, read_items
    from crucible_ray.batch.queue_job import QueueBatchJob
    from crucible_ray.execution.queue_client import queue_plane_running
    from crucible_ray.progress import progress_bar

    if not input_path.is_file():
        err_console.print(f"[red]no such input file:[/] {input_path}")
        raise typer.Exit(EXIT_USAGE)
    shared = None
    if judge or tests is not None:
        shared = judge_options(mode, entry_point, compare, case_insensitive, cpu_s, keep_going,
                               scoring)  # fmt: skip
        if tests is not None:
            shared["tests"] = read_tests(tests)
    try:
        results = ResultsFile(output, resume=resume, overwrite=overwrite)
    except (BatchError, OSError) as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_USAGE) from None

    def report(number: int, message: str) -> None:
        err_console.print(f"{input_path}:{number}: {message}", markup=False, highlight=False)

    job = None
    try:
        with reported_errors():
            _connect(address)
            # The plane the cluster runs: the queue plane if its supervisor is there.
            job_class = QueueBatchJob if queue_plane_running() else BatchJob
            job = job_class(results, window=window, unavailable_timeout_s=unavailable_timeout,
                            on_invalid=report)  # fmt: skip
            with progress_bar(count_items(input_path), enabled=progress,
                              description="batch") as tally:  # fmt: skip
                summary = job.run(read_items(input_path, shared), tally)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: results so far are in {output}; rerun with --resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        results.close()
    _print_summary(summary.as_dict(), as_json)
    raise typer.Exit(EXIT_USAGE if summary.invalid else EXIT_OK)


def _connect(address: str | None) -> None:
    import ray

    from crucible_ray.cluster import local
    from crucible_ray.topology import NAMESPACE

    if address is None:
        local.connect()
    elif not ray.is_initialized():
        os.environ.setdefault("RAY_ADDRESS", address)
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False,
                 logging_level="WARNING")  # fmt: skip


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"batch: {summary['evaluated']} evaluated "
                        f"in {summary['elapsed_s']}s ({summary['per_second']}/s)")  # fmt: skip
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for status, count in sorted(summary["by_status"].items()):
        table.add_row(status, str(count))
    table.add_row("resumed (already in output)", str(summary["resumed"]))
    table.add_row("invalid lines", str(summary["invalid"]))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(batch)
