import json

from crucible_ray.host import merged_daemon_config, register_runtime
from crucible_ray.sandbox.docker.engine import RUNSC_RUNTIME_ARGS, RUNSC_RUNTIME_NAME


def test_merge_keeps_existing_settings_and_runtimes():
    existing = {"log-level": "warn", "runtimes": {"runsc": {"path": "/usr/bin/runsc"}}}
    merged = merged_daemon_config(existing, "/usr/bin/runsc")
    assert merged["log-level"] == "warn"
    assert merged["runtimes"]["runsc"] == {"path": "/usr/bin/runsc"}
    assert merged["runtimes"][RUNSC_RUNTIME_NAME]["runtimeArgs"] == list(RUNSC_RUNTIME_ARGS)
    assert existing["runtimes"] == {"runsc": {"path": "/usr/bin/runsc"}}  # input untouched


def test_register_runtime_is_idempotent(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"data-root": "/srv/docker"}))
    assert register_runtime(path) is True
    assert register_runtime(path) is False
    saved = json.loads(path.read_text())
    assert saved["data-root"] == "/srv/docker" and RUNSC_RUNTIME_NAME in saved["runtimes"]
