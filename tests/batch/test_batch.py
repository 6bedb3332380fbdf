"""`crucible-ray batch` on a real cluster with real gVisor sandboxes: killed and resumed,
bad lines reported with their numbers, Parquet input, refusing to clobber results."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.docker


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def read_output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def finish(process, timeout_s: float = 600) -> tuple[int, dict, str]:
    stdout, stderr = process.communicate(timeout=timeout_s)
    summary = json.loads(stdout) if stdout.strip() else {}
    return process.returncode, summary, stderr


@pytest.mark.timeout(1200)  # a thousand sandboxes: ~3 minutes on two cores
def test_a_killed_job_resumes_with_every_id_exactly_once(batch_cli, tmp_path):
    total = 400  # enough to kill it mid-run with many in flight (1,000 took 170 s)
    source = write_lines(tmp_path / "in.jsonl", [
        {"id": f"item-{i:04d}", "code": f"print({i} * 2)", "metadata": {"n": i}}
        for i in range(total)
    ])  # fmt: skip
    output = tmp_path / "out.jsonl"

    job = batch_cli(str(source), "-o", str(output))
    assert wait_for(lambda: output.exists() and len(output.read_bytes().splitlines()) >= 120,
                    timeout_s=600)  # fmt: skip
    job.send_signal(signal.SIGKILL)  # no chance to clean up
    job.wait(timeout=30)
    written_before = len(read_output(output))
    assert 120 <= written_before < total

    code, summary, stderr = finish(batch_cli(str(source), "-o", str(output), "--resume"))
    assert code == 0, stderr
    assert summary["resumed"] == written_before
    assert summary["resumed"] + summary["evaluated"] == total
    rows = read_output(output)
    ids = [row["id"] for row in rows]
    assert len(ids) == total and set(ids) == {f"item-{i:04d}" for i in range(total)}
    for row in rows:  # each line is the result of its own item
        assert row["status"] == "succeeded", row
        assert row["stdout"] == f"{row['metadata']['n'] * 2}\n"
        assert row["runtime"] == "runsc" and row["eval_id"].startswith("batch-")


def test_a_killed_judge_job_resumes_with_every_verdict_exactly_once(batch_cli, tmp_path):
    total = 40
    tests = write_lines(tmp_path / "tests.jsonl", [
        {"stdin": f"{n} {n + 1}", "expected_stdout": str(2 * n + 1)} for n in range(3)
    ])  # fmt: skip
    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    wrong = "a, b = map(int, input().split())\nprint(a * b)\n"
    source = write_lines(tmp_path / "in.jsonl", [
        {"id": i, "code": (wrong if i % 4 == 0 else right) + f"# {i}\n", "metadata": {"n": i}}
        for i in range(total)
    ] + [{"id": "own-tests", "code": right, "tests": [{"stdin": "1 1", "expected_stdout": "3"}]},
         {"id": "bad-mode", "code": right, "mode": "function"}])  # fmt: skip
    output = tmp_path / "out.jsonl"
    args = (str(source), "-o", str(output), "--tests", str(tests), "--keep-going",
            "--scoring", "fraction")  # fmt: skip

    job = batch_cli(*args)
    assert wait_for(lambda: output.exists() and len(output.read_bytes().splitlines()) >= 8,
                    timeout_s=600)  # fmt: skip
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    written_before = len(read_output(output))
    assert 8 <= written_before < total + 1

    code, summary, stderr = finish(batch_cli(*args, "--resume"))
    assert code == 2, stderr  # the line without an entry point for mode function
    assert "in.jsonl:42:" in stderr and "entry_point" in stderr
    assert summary["resumed"] + summary["evaluated"] == total + 1
    rows = {row["id"]: row for row in read_output(output)}
    assert len(read_output(output)) == total + 1 and set(rows) == {*range(total), "own-tests"}
    for n in range(total):  # each line is the judgement of its own code on the shared tests
        row = rows[n]
        assert row["metadata"] == {"n": n} and row["eval_id"].startswith("batch-")
        # (n*(n+1) equals 2n+1 for no n: a wrong program fails every test)
        assert (row["verdict"], row["score"]) == (("WA", 0.0) if n % 4 == 0 else ("AC", 1.0))
        assert len(row["tests"]) == 3
    assert rows["own-tests"]["verdict"] == "WA"  # its own test, not the shared ones
    assert [t["stdout_preview"] for t in rows["own-tests"]["tests"]] == ["2\n"]


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_runs(batch_cli, tmp_path):
    source = write_lines(tmp_path / "mixed.jsonl", [
        {"id": "ok-1", "code": "print('one')"},
        "{not json",
        {"id": "no-code"},
        {"id": "ok-1", "code": "print('again')"},  # duplicate id
        {"id": "cobol", "code": "DISPLAY 'X'.", "language": "cobol"},
        {"id": "too-long", "code": "print(1)", "timeout_s": 999},
        "[1, 2]",
        {"id": 7, "code": "console.log('seven')", "language": "javascript"},
        {"id": "crash", "code": "raise SystemExit(4)"},
    ])  # fmt: skip
    output = tmp_path / "out.jsonl"
    code, summary, stderr = finish(batch_cli(str(source), "-o", str(output)))
    assert code == 2  # some lines were invalid; the rest ran
    for number in (2, 3, 4, 5, 6, 7):
        assert f"mixed.jsonl:{number}:" in stderr, stderr
    assert "duplicate id 'ok-1'" in stderr
    assert [entry["line"] for entry in summary["invalid_lines"]] == [2, 3, 4, 5, 6, 7]
    rows = {row["id"]: row for row in read_output(output)}
    assert set(rows) == {"ok-1", 7, "crash"}
    assert rows["ok-1"]["stdout"] == "one\n" and rows[7]["stdout"] == "seven\n"
    assert rows["crash"]["status"] == "failed" and rows["crash"]["exit_code"] == 4
    assert summary["by_status"] == {"succeeded": 2, "failed": 1}

    # Results are never clobbered by accident.
    code, _, stderr = finish(batch_cli(str(source), "-o", str(output)))
    assert code == 2 and "--resume" in stderr


def test_parquet_input(batch_cli, tmp_path):
    table = pa.table({
        "id": [f"p{i}" for i in range(20)],
        "code": [f"import sys\nprint(sys.stdin.read().upper() + '{i}')" for i in range(20)],
        "language": ["python"] * 20,
        "stdin": [None if i % 2 else "row" for i in range(20)],
    })  # fmt: skip
    source = tmp_path / "in.parquet"
    pq.write_table(table, source, row_group_size=7)
    output = tmp_path / "out.jsonl"
    code, summary, stderr = finish(batch_cli(str(source), "-o", str(output)))
    assert code == 0, stderr
    assert summary["by_status"] == {"succeeded": 20}
    rows = {row["id"]: row for row in read_output(output)}
    assert rows["p0"]["stdout"] == "ROW0\n" and rows["p1"]["stdout"] == "1\n"
