"""Batch input: JSON Lines or Parquet rows of ``{"id", "code", "language", "image"?,
"stdin"?, "timeout_s"?, "metadata"?}`` (or, for a judge job, a JudgeRequest's fields with the
id and metadata), read lazily (memory stays flat whatever the file size); a bad line becomes
an error with its line number instead of stopping the job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, StrictInt, StrictStr, ValidationError

from crucible_ray.judge.models import JudgeRequest
from crucible_ray.models import EvalRequest

PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_ROWS_PER_READ = 1024


class BatchItem(EvalRequest):
    """One line of a batch: an EvalRequest with the caller's id and optional metadata."""

    id: StrictStr | StrictInt = Field(..., description="unique within the job")
    metadata: dict[str, Any] | None = Field(None, description="copied to the output line")

    @property
    def key(self) -> str:
        return str(self.id)

    def request(self) -> dict[str, Any]:
        return self.model_dump(exclude={"id", "metadata"})

    kind: ClassVar[str] = "eval"  # what the dispatcher runs it as


class JudgeItem(JudgeRequest):
    """One line of a judge job: a JudgeRequest (its tests, or the job's shared ones) with the
    caller's id and optional metadata."""

    id: StrictStr | StrictInt = Field(..., description="unique within the job")
    metadata: dict[str, Any] | None = Field(None, description="copied to the output line")

    key = BatchItem.key
    request = BatchItem.request
    kind: ClassVar[str] = "judge"


Item = BatchItem | JudgeItem


@dataclass(frozen=True)
class InputLine:
    number: int  # 1-based line (JSON Lines) or row (Parquet)
    item: Item | None
    error: str | None = None


def read_items(path: Path, judge: dict[str, Any] | None = None) -> Iterator[InputLine]:
    """The lines of ``path``; with ``judge`` (shared JudgeRequest fields, such as the tests
    and mode: a line's own fields win), each line is a judge request."""
    rows = _parquet_rows(path) if path.suffix in PARQUET_SUFFIXES else _json_lines(path)
    for number, row in rows:
        if isinstance(row, InputLine):
            yield row
        elif judge is None:
            yield parse(number, row, BatchItem)
        else:
            yield parse(number, {**judge, **row} if isinstance(row, dict) else row, JudgeItem)


def count_items(path: Path) -> int:
    """How many items the file holds (for the progress bar), without loading it."""
    if path.suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    count = 0
    with path.open("rb") as f:
        for line in f:
            count += bool(line.strip())
    return count


def parse(number: int, row: Any, model: type[Item] = BatchItem) -> InputLine:
    if not isinstance(row, dict):
        return InputLine(number, None, f"expected a JSON object, got {type(row).__name__}")
    try:
        return InputLine(number, model.model_validate(row))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        return InputLine(number, None, f"{where}: {first['msg']}")


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                yield number, InputLine(number, None, f"not valid JSON: {exc}")


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_ROWS_PER_READ):
        for row in batch.to_pylist():
            number += 1
            # Parquet has no "missing": absent optional values arrive as nulls.
            yield number, {k: v for k, v in row.items() if v is not None}
