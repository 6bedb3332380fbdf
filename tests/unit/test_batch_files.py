"""Batch input parsing and the results file (pure file handling, no cluster)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crucible_ray.batch import BatchError, ResultsFile, count_items, read_items
from crucible_ray.batch.results import key_digest


def test_json_lines_errors_carry_line_numbers(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"id": 1, "code": "print(1)"}\n\n{oops\n{"id": "x"}\n"text"\n'
        b'{"id": "y", "code": "1", "extra": true}\n\xff\xfe\n{"id": "z", "code": "2"}\n'
    )
    lines = list(read_items(source))
    assert [line.number for line in lines] == [1, 3, 4, 5, 6, 7, 8]
    assert lines[0].item is not None and lines[0].item.key == "1"
    assert "not valid JSON" in lines[1].error
    assert lines[2].error.startswith("code:")
    assert "JSON object" in lines[3].error
    assert lines[4].error.startswith("extra:")
    assert "not valid JSON" in lines[5].error
    assert lines[6].item.request() == {"code": "2", "language": "python", "image": None,
                                       "stdin": "", "timeout_s": None}  # fmt: skip
    assert count_items(source) == 7


def test_parquet_rows_are_read_in_groups_with_nulls_as_defaults(tmp_path):
    source = tmp_path / "in.parquet"
    table = pa.table({"id": ["a", "b", "c"], "code": ["1", None, "3"],
                      "stdin": [None, None, "in"]})  # fmt: skip
    pq.write_table(table, source, row_group_size=2)
    lines = list(read_items(source))
    assert [line.number for line in lines] == [1, 2, 3]
    assert lines[0].item.stdin == "" and lines[2].item.stdin == "in"
    assert lines[1].item is None and lines[1].error.startswith("code:")
    assert count_items(source) == 3


def test_results_file_refuses_to_clobber_and_repairs_a_torn_line(tmp_path):
    output = tmp_path / "out.jsonl"
    results = ResultsFile(output)
    token = results.job_token
    results.write({"id": "a", "status": "succeeded"})
    results.write({"id": 2, "status": "failed"})
    results.close()
    with output.open("ab") as f:
        f.write(b'{"id": "c", "sta')  # killed in the middle of a write
    with pytest.raises(BatchError, match="--resume"):
        ResultsFile(output)
    resumed = ResultsFile(output, resume=True)
    assert resumed.job_token == token  # a resumed job finds its evaluations again
    assert set(resumed.done()) == {key_digest("a"), key_digest("2")}
    resumed.write({"id": "c", "status": "succeeded"})
    resumed.close()
    assert [json.loads(x)["id"] for x in output.read_text().splitlines()] == ["a", 2, "c"]
    fresh = ResultsFile(output, overwrite=True)
    assert fresh.job_token != token and output.read_bytes() == b""
    fresh.close()


def test_a_foreign_file_is_not_taken_for_results(tmp_path):
    output = tmp_path / "out.jsonl"
    output.write_text('{"no_id": 1}\n')
    with pytest.raises(BatchError, match=r"out\.jsonl:1"):
        set(ResultsFile(output, resume=True).done())


def test_resuming_before_the_first_result_keeps_the_job(tmp_path):
    output = tmp_path / "out.jsonl"
    first = ResultsFile(output)
    token = first.job_token
    first.close()  # killed before any result was written
    resumed = ResultsFile(output, resume=True)
    assert resumed.job_token == token  # in-flight evaluations are found again, not rerun
    resumed.close()
    output.unlink()
    assert ResultsFile(output, resume=True).job_token == token
