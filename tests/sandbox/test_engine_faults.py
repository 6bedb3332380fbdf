"""A transient engine error while a sandbox starts costs that start a retry, not the machine:
only an engine that really cannot run sandboxes makes the runner refuse work.

The engine is real; ``FlakyEngine`` only makes its first ``create_container`` calls fail the
way a hiccuping daemon does (an HTTP 500 from the engine API), before passing through.
"""

from __future__ import annotations

import docker.errors
import pytest
import requests

from crucible_ray import EvalRequest, SandboxRunner
from crucible_ray.errors import EngineUnavailable, SandboxStartFailed
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.sandbox.docker.engine import Engine

pytestmark = pytest.mark.docker


class FlakyEngine(Engine):
    def __init__(self, failures: int, *, engine_down: bool = False) -> None:
        super().__init__(timeout_s=30)
        self.failures, self.engine_down, self.calls = failures, engine_down, 0
        real = self.api
        create = real.create_container

        def flaky_create(*args, **kwargs):
            self.calls += 1
            if self.calls <= self.failures:
                response = requests.Response()
                response.status_code = 500
                raise docker.errors.APIError("engine hiccup", response, "transient")
            return create(*args, **kwargs)

        real.create_container = flaky_create

    def info(self) -> dict:
        if self.engine_down and self.calls > 0:
            raise EngineUnavailable("Docker engine stopped answering")
        return super().info()


def test_a_transient_engine_error_is_retried_and_the_evaluation_runs(engine, tmp_path):
    flaky = FlakyEngine(failures=2)
    with SandboxRunner(backend=DockerBackend(flaky), state_dir=tmp_path) as runner:  # no warm pool
        result = runner.run(EvalRequest(code="print('ran')"))
    assert (result.status, result.stdout) == ("succeeded", "ran\n"), result
    assert flaky.calls == 3


def test_a_lasting_error_with_a_healthy_engine_fails_this_start_only(engine, tmp_path):
    flaky = FlakyEngine(failures=3)
    with SandboxRunner(backend=DockerBackend(flaky), state_dir=tmp_path) as runner:
        with pytest.raises(SandboxStartFailed):  # not SandboxUnavailable: the node is fine
            runner.run(EvalRequest(code="print(1)"))
        assert runner.run(EvalRequest(code="print(2)")).stdout == "2\n"  # the next one runs


def test_an_engine_that_really_cannot_run_sandboxes_is_refused(engine, tmp_path):
    flaky = FlakyEngine(failures=10, engine_down=True)
    runner = SandboxRunner(backend=DockerBackend(flaky), state_dir=tmp_path).start()
    try:
        with pytest.raises(EngineUnavailable):
            runner.run(EvalRequest(code="print(1)"))
    finally:
        runner.close()
