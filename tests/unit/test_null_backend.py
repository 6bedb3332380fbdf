"""The benchmark-only null backend: it isolates nothing, so it must never be usable by
accident. Refused without CRUCIBLE_BENCHMARK_ONLY=1, invisible to ``auto`` and to every list of
backends; with the variable set, the real runner drives it (so benchmarks measure the real
control plane) and every result says which backend ran it."""

from __future__ import annotations

import pytest

from crucible_ray.errors import SandboxUnavailable
from crucible_ray.models import EvalRequest, EvalStatus
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import registry
from crucible_ray.sandbox.benchmark.null import ENABLE, NAME
from crucible_ray.sandbox.runner import SandboxRunner

NULL = SandboxPolicy(backend=NAME)


def test_it_is_refused_without_the_benchmark_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(ENABLE, raising=False)
    backend = registry.backend_for(NULL)  # named explicitly: made, then refused by check
    with pytest.raises(SandboxUnavailable, match="benchmarks only"):
        backend.check(NULL)
    with pytest.raises(SandboxUnavailable, match="benchmarks only"):
        SandboxRunner(NULL, state_dir=tmp_path).start()
    monkeypatch.setenv(ENABLE, "yes")  # only exactly "1" enables it
    with pytest.raises(SandboxUnavailable):
        backend.check(NULL)


def test_nothing_lists_it_or_chooses_it():
    # auto tries PREFERENCE; doctor, sweep and the CLI's choices come from BACKEND_NAMES
    assert NAME not in registry.BACKEND_NAMES and NAME not in registry.PREFERENCE


def test_with_the_variable_the_real_runner_drives_it_and_results_name_it(monkeypatch, tmp_path):
    monkeypatch.setenv(ENABLE, "1")
    monkeypatch.setenv("CRUCIBLE_NULL_OUTPUT_BYTES", "5")
    with SandboxRunner(NULL, state_dir=tmp_path) as runner:
        result = runner.run(EvalRequest(code="raise SystemExit(3)"))
        assert (result.status, result.exit_code, result.stdout) == (EvalStatus.SUCCEEDED, 0,
                                                                     "xxxxx")  # fmt: skip
        assert (result.backend, result.runtime) == (NAME, "none")  # it ran nothing: it says so
        assert runner.backend.live_sandboxes(runner.work_dir) == set()  # destroyed after use
