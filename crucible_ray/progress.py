"""One progress bar for long work (client ``evaluate_many``, CLI ``batch``): count, rate, ETA
and a tally by status. Silent unless stderr is a terminal (or it is asked for)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


class Tally:
    """What the caller reports: one ``advance(status)`` per finished item."""

    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self.counts: Counter[str] = Counter()
        self._progress, self._task_id = progress, task_id

    def advance(self, status: str) -> None:
        self.counts[status] += 1
        if self._progress is not None and self._task_id is not None:
            summary = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
            self._progress.update(self._task_id, advance=1, summary=summary)  # type: ignore[arg-type]


@contextmanager
def progress_bar(
    total: int | None, *, enabled: bool | None = None, description: str = "evaluations"
) -> Iterator[Tally]:
    """``enabled=None``: on when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield Tally(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[summary]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        task_id = progress.add_task(description, total=total, summary="")
        yield Tally(progress, task_id)  # type: ignore[arg-type]
