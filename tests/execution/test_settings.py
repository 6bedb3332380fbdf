"""One policy from the settings to every sandbox: a changed ``CRUCIBLE_SANDBOX__*`` setting is
what the executors' real sandboxes enforce (seen from inside, so on any backend), and
``CRUCIBLE_STATE_DIR`` moves their files."""

from __future__ import annotations

import pytest

from crucible_ray import EvalRequest
from crucible_ray.execution import ExecutionClient, get_dispatcher
from crucible_ray.execution.client import stop_dispatcher
from crucible_ray.settings import Settings
from tests.conftest import live_sandboxes, wait_for

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
ALLOCATE = "block = bytearray({} << 20)\nprint(len(block) >> 20)"


def test_a_changed_setting_changes_what_every_sandbox_gets(
    cluster, sandbox_backend, tmp_path, monkeypatch
):
    # Memory raised over the default (100 MB): 200 MB fits only because of the setting.
    monkeypatch.setenv("CRUCIBLE_SANDBOX__MEMORY_MB", "300")
    monkeypatch.setenv("CRUCIBLE_SANDBOX__TMP_SIZE_MB", "3")
    monkeypatch.setenv("CRUCIBLE_SANDBOX__MAX_TIMEOUT_S", "45")
    monkeypatch.setenv("CRUCIBLE_STATE_DIR", str(tmp_path))
    one_slot = {"slots_per_actor": 1, "min_actors": 1, "max_actors": 1}
    settings = Settings(jwt_secret="settings-test-secret-0123456789abcdefgh", dispatcher=one_slot)
    client = ExecutionClient(get_dispatcher(settings.dispatcher, replace=True))
    try:
        assert wait_for(lambda: client.stats()["slots_ready"] == 1, timeout_s=120)
        (executor,) = client.stats()["executors"]
        # The warm sandbox's files are under the moved state dir, where the backend finds it.
        assert (tmp_path / "sandboxes" / executor["owner"]).is_dir()
        assert wait_for(
            lambda: len(live_sandboxes(sandbox_backend, executor["owner"], tmp_path)) == 1,
            timeout_s=60,
        )

        fits = client.run(EvalRequest(code=ALLOCATE.format(200)))
        assert (fits.status, fits.stdout) == ("succeeded", "200\n"), fits
        too_big = client.run(EvalRequest(code=ALLOCATE.format(400)))
        assert too_big.status == "failed" and too_big.oom_killed, too_big
        # 40 s is over the default maximum (30): accepted only because of the setting.
        result = client.run(EvalRequest(code=FILL_TMP, timeout_s=40))
        assert (result.status, result.stdout) == ("succeeded", "ENOSPC\n"), result
    finally:
        stop_dispatcher()
