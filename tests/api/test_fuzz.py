"""Property-based fuzzing of the whole API from its own OpenAPI document: no input, however
malformed, may produce a server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def test_no_generated_request_yields_a_5xx(service, token_for):
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "run",
            f"{service}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token_for('fuzzer')}",
            "--max-examples",
            "15",
            "--request-timeout",
            "120",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    report = run.stdout[-4000:] + run.stderr[-2000:]
    print(run.stdout[-1500:])  # the summary: operations and cases tested
    assert run.returncode == 0, report
    assert "not_a_server_error" in run.stdout or "passed" in run.stdout.lower(), report
