"""Sandbox lifecycle, on every backend (the conformance suite): nothing outlives its evaluation,
cancellation, crashed callers, warm pools, broken warm sandboxes, fail-secure refusals. Then the
Docker backend's own: the engine's runtime registration and the engine restarting."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from crucible_ray import EvalRequest, RuntimeUnavailable, SandboxRunner
from crucible_ray.host import DAEMON_JSON, DOCKER_PID, wait_for_runtime
from crucible_ray.paths import sandboxes_dir
from crucible_ray.sandbox import ledger
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.sandbox.docker.engine import LABEL_OWNER, RUNSC_RUNTIME_NAME
from tests.conftest import crucible_containers, wait_for

pytestmark = pytest.mark.docker


def owned_by(engine, owner: str) -> list[dict]:
    return [c for c in crucible_containers(engine) if c["Labels"].get(LABEL_OWNER) == owner]


def live(runner: SandboxRunner) -> set[str]:
    return runner.backend.live_sandboxes(runner.work_dir)


def test_no_sandbox_outlives_its_evaluation(make_runner):
    runner = make_runner()
    for code, timeout in [("print(1)", 5), ("import sys; sys.exit(4)", 5),
                          ("while True: pass", 1)]:  # fmt: skip
        runner.run(EvalRequest(code=code, timeout_s=timeout))
        assert live(runner) == set()
    # Nothing of them is left on the host (a backend may keep its empty directories), and the
    # ledger of created sandboxes is empty.
    assert [p for p in runner.work_dir.rglob("*") if not p.is_dir()] == []
    assert ledger.recorded(runner.work_dir) == set()


def test_cancellation_kills_the_running_sandbox(make_runner):
    runner = make_runner()
    results = []
    thread = threading.Thread(
        target=lambda: results.append(
            runner.run(EvalRequest(code="import time\nprint('up', flush=True)\ntime.sleep(60)",
                                   timeout_s=30), eval_id="cancel-me")
        )
    )  # fmt: skip
    thread.start()
    assert wait_for(lambda: len(live(runner)) == 1)
    time.sleep(0.5)
    started = time.monotonic()
    assert runner.cancel("cancel-me") is True
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - started < 10
    (result,) = results
    assert result.status == "cancelled" and result.id == "cancel-me"
    assert live(runner) == set()
    assert runner.cancel("cancel-me") is False  # finished: nothing left to cancel


def test_crashed_callers_sandboxes_are_swept_at_next_start(make_runner, checked_backend, tmp_path):
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner
        policy = SandboxPolicy(backend=sys.argv[1])
        with SandboxRunner(policy, warm={"python": 1}, state_dir=Path(sys.argv[2])) as runner:
            print(runner.owner, flush=True)
            runner.run(EvalRequest(code="import time; time.sleep(60)", timeout_s=30))
    """)
    state = tmp_path / "shared"
    child = subprocess.Popen([sys.executable, "-c", script, checked_backend, str(state)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    owner = child.stdout.readline().strip()
    owner_dir = sandboxes_dir(state) / owner
    probe = make_runner(state_dir=state).backend  # the next start on this machine sweeps...
    assert wait_for(lambda: len(probe.live_sandboxes(owner_dir)) == 2)  # running + warm
    child.send_signal(signal.SIGKILL)  # the caller crashes mid-evaluation
    child.wait()
    assert probe.live_sandboxes(owner_dir), "nothing left to sweep: the test would prove nothing"
    make_runner(state_dir=state)  # ...orphans, as this one's start does
    assert probe.live_sandboxes(owner_dir) == set()


def test_warm_pool_refills_and_a_dead_warm_sandbox_is_replaced(make_runner):
    runner = make_runner(warm={"python": 1})
    assert wait_for(lambda: runner.warm_ready() == {"python": 1})
    (warm,) = runner._pools["python"]._ready
    warm.kill()  # a runtime fault kills the idle sandbox
    result = runner.run(EvalRequest(code="print('still fine')"))
    assert result.status == "succeeded" and result.stdout == "still fine\n"
    assert wait_for(lambda: runner.warm_ready() == {"python": 1})


@pytest.fixture
def daemon_config():
    """Edit Docker's real daemon.json for one test, then restore it (and reload dockerd)."""
    original = DAEMON_JSON.read_text()

    def apply(config: dict) -> None:
        DAEMON_JSON.write_text(json.dumps(config))
        os.kill(int(DOCKER_PID.read_text()), signal.SIGHUP)
        time.sleep(1.5)

    yield json.loads(original), apply
    DAEMON_JSON.write_text(original)
    os.kill(int(DOCKER_PID.read_text()), signal.SIGHUP)
    wait_for_runtime(30)


def test_fail_secure_without_the_gvisor_runtime(engine, daemon_config):
    config, apply = daemon_config
    del config["runtimes"][RUNSC_RUNTIME_NAME]
    apply(config)
    with pytest.raises(RuntimeUnavailable, match="not registered"):
        SandboxRunner(backend=DockerBackend(engine)).start()
    cli = subprocess.run([str(Path(sys.executable).with_name("crucible-ray")), "run",
                          "--backend", "docker", "-"],
                         input="print(1)", capture_output=True, text=True)  # fmt: skip
    assert cli.returncode == 3 and "refused" in cli.stderr


def test_fail_secure_when_gvisor_would_ignore_seccomp(engine, daemon_config):
    config, apply = daemon_config
    config["runtimes"][RUNSC_RUNTIME_NAME]["runtimeArgs"] = ["--network=none"]
    apply(config)
    with pytest.raises(RuntimeUnavailable, match="oci-seccomp"):
        SandboxRunner(backend=DockerBackend(engine)).start()


def test_fail_secure_without_the_seccomp_profile(make_runner, tmp_path):
    with pytest.raises(RuntimeUnavailable, match="seccomp"):
        make_runner(seccomp_profile=tmp_path / "missing.json")


@pytest.fixture
def engine_restarted():
    """The test stops dockerd; this brings it back whatever happens in the test."""
    from crucible_ray.host import ensure_engine

    yield ensure_engine
    ensure_engine(config_changed=False)


def test_engine_restart_mid_evaluation_ends_in_an_error_result(engine, engine_restarted):
    from crucible_ray.host import engine_answers

    with SandboxRunner(backend=DockerBackend(engine)) as runner:
        results = []
        code = "import time\nprint('up', flush=True)\ntime.sleep(25)"
        thread = threading.Thread(
            target=lambda: results.append(runner.run(EvalRequest(code=code, timeout_s=30)))
        )
        thread.start()
        assert wait_for(lambda: len(owned_by(engine, runner.owner)) == 1)
        time.sleep(2.0)  # booted and running the program (a boot cut short is retried instead)
        os.kill(int(DOCKER_PID.read_text()), signal.SIGTERM)  # the engine goes away mid-run
        assert wait_for(lambda: not engine_answers(timeout_s=1))
        thread.join(timeout=30)
        (result,) = results
        assert result.status == "error", result
        assert result.error_code in ("engine_failed", "engine_interrupted"), result
        assert "/" not in result.error and "Errno" not in result.error  # no engine internals
        engine_restarted(config_changed=False)
        after = runner.run(EvalRequest(code="print('back')"))
        assert after.status == "succeeded" and after.stdout == "back\n"
        assert owned_by(engine, runner.owner) == [] and not runner.backend.engine.pending_removals
