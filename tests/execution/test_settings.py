"""One policy from the settings to every sandbox: a changed ``CRUCIBLE_SANDBOX__*`` setting is
what the executors' real containers get, and ``CRUCIBLE_STATE_DIR`` moves their files."""

from __future__ import annotations

import pytest

from crucible_ray import EvalRequest
from crucible_ray.execution import ExecutionClient, get_dispatcher
from crucible_ray.execution.client import stop_dispatcher
from crucible_ray.sandbox.docker.engine import LABEL_OWNER
from crucible_ray.settings import Settings
from tests.conftest import crucible_containers, wait_for

pytestmark = pytest.mark.docker
FILL_TMP = """
import errno
try:
    with open("/tmp/fill", "wb") as f:
        f.write(b"x" * (4 << 20))
        f.flush()
    print("wrote 4 MiB")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def test_a_changed_setting_changes_what_every_sandbox_gets(cluster, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_SANDBOX__MEMORY_MB", "77")
    monkeypatch.setenv("CRUCIBLE_SANDBOX__TMP_SIZE_MB", "3")
    monkeypatch.setenv("CRUCIBLE_SANDBOX__MAX_TIMEOUT_S", "45")
    monkeypatch.setenv("CRUCIBLE_STATE_DIR", str(tmp_path))
    one_slot = {"slots_per_actor": 1, "min_actors": 1, "max_actors": 1}
    settings = Settings(jwt_secret="settings-test-secret-0123456789abcdefgh", dispatcher=one_slot)
    client = ExecutionClient(get_dispatcher(settings.dispatcher, replace=True))
    try:
        assert wait_for(lambda: client.stats()["slots_ready"] == 1, timeout_s=120)
        (executor,) = client.stats()["executors"]

        def warm() -> list[dict]:
            return [c for c in crucible_containers(engine)
                    if c["Labels"][LABEL_OWNER] == executor["owner"]]  # fmt: skip

        assert wait_for(lambda: len(warm()) == 1, timeout_s=60)
        host = engine.api.inspect_container(warm()[0]["Id"])["HostConfig"]
        assert host["Memory"] == host["MemorySwap"] == 77 << 20
        assert "size=3m" in host["Tmpfs"]["/tmp"]
        assert (tmp_path / "sandboxes" / executor["owner"]).is_dir()  # the state dir moved
        assert host["Binds"] is None  # nothing of the host is mounted into a sandbox

        # 40 s is over the default maximum (30): accepted only because of the setting.
        result = client.run(EvalRequest(code=FILL_TMP, timeout_s=40))
        assert (result.status, result.stdout) == ("succeeded", "ENOSPC\n"), result
    finally:
        stop_dispatcher()
