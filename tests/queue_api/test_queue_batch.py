"""`crucible-ray batch` on a cluster that runs the queue plane: it finds the plane by itself,
and a job killed mid-run resumes with every id exactly once (real sandboxes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable

import pytest

from tests.batch.conftest import CLI
from tests.batch.test_batch import finish, read_output, write_lines
from tests.conftest import wait_for

pytestmark = pytest.mark.docker


@pytest.fixture
def batch_cli(cluster, service) -> Callable[..., subprocess.Popen]:
    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([CLI, "batch", *args, "--no-progress", "--json"],
                                env={**os.environ, **cluster.env()}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    return start


@pytest.mark.timeout(900)
def test_a_killed_job_on_the_queue_plane_resumes_with_every_id_exactly_once(batch_cli, tmp_path):
    total = 150
    rows = [{"id": f"item-{i:04d}", "code": f"print({i} * 3)", "metadata": {"n": i}}
            for i in range(total)]  # fmt: skip
    source = write_lines(tmp_path / "in.jsonl", [*rows, {"id": "bad", "code": "x",
                                                         "timeout_s": 999}])  # fmt: skip
    output = tmp_path / "out.jsonl"
    job = batch_cli(str(source), "-o", str(output))
    assert wait_for(lambda: output.exists() and len(output.read_bytes().splitlines()) >= 30,
                    timeout_s=300)  # fmt: skip
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    written_before = len(read_output(output))
    assert 30 <= written_before < total

    code, summary, stderr = finish(batch_cli(str(source), "-o", str(output), "--resume"))
    assert code == 2, stderr  # the bad line is reported; every other line was evaluated
    assert summary["invalid"] == 1 and "timeout_s" in json.dumps(summary["invalid_lines"])
    assert summary["resumed"] == written_before
    assert summary["resumed"] + summary["evaluated"] == total
    results = read_output(output)
    assert sorted(r["id"] for r in results) == [r["id"] for r in rows]
    for result in results:
        assert result["status"] == "succeeded", result
        assert result["stdout"] == f"{result['metadata']['n'] * 3}\n"
        assert result["eval_id"].startswith("batch-") and result["runtime"] == "runsc"
