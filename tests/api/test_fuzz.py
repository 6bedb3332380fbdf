"""Property-based fuzzing of the whole API from its own OpenAPI document: no input, however
malformed, and no sequence of calls following its links, may produce a server error."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]
EXAMPLES = 80  # per operation, in each generating phase (120 took 110 s with the judge routes)


@pytest.mark.timeout(1500)
def test_no_generated_request_or_call_sequence_yields_a_5xx(service, token_for, tmp_path):
    st = Path(sys.executable).with_name("st")
    report = tmp_path / "report.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            str(st), "run", f"{service}/openapi.json",
            "--checks", "not_a_server_error",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--header", f"Authorization: Bearer {token_for('fuzzer', roles=['operator'])}",
            "--max-examples", str(EXAMPLES),
            "--request-timeout", "120",
            # One worker: CPython 3.11.7's ast module is not thread-safe (gh-106905, "AST
            # constructor recursion depth mismatch" inside schemathesis with two workers).
            "--workers", "1",
            "--generation-database", "none",
            "--report", "json", "--report-json-path", str(report),
        ],
        capture_output=True, text=True, timeout=1400, cwd=tmp_path,  # its caches: not here
    )  # fmt: skip
    print(f"schemathesis took {time.monotonic() - started:.0f} s")
    print(run.stdout[-3000:])  # the summary: operations, phases and cases tested
    output = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, output
    document = json.loads(report.read_text())
    assert document["exit_code"] == 0 and document["complete"], output
    assert document["failures"] == [] and document["errors"] == [], output
    assert document["test_cases"]["with_failures"] == 0, output
    operations = document["operations"]
    assert operations["tested"] == operations["selected"] >= 10, operations
    assert document["phases"]["stateful"]["status"] == "success", document["phases"]
    assert document["test_cases"]["generated"] >= EXAMPLES * 5, document["test_cases"]
