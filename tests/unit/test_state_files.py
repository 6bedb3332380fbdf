"""The state directory, secret files and the audit log: private to their owner."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from crucible_ray.audit import audit_evaluation, audit_to_file
from crucible_ray.settings import Settings, generated_secret, load_settings
from crucible_ray.store.files import private_dir

SECRET = "state-files-secret-Qx8vN2mP5rT9wZ1bC4dF7gH0"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_open_state_directory_is_tightened_and_a_shared_one_refused(tmp_path):
    state = tmp_path / "crucible"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as /var/lib/crucible was
    assert mode(private_dir(state)) == 0o700
    assert mode(private_dir(tmp_path / "new" / "state")) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(ValueError, match="shared"):
        private_dir(shared)


def test_audit_events_go_to_a_private_append_only_file(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    previous = os.umask(0o022)
    try:
        path = audit_to_file(state)
    finally:
        os.umask(previous)
    assert path == state / "audit.log" and mode(path) == 0o600 and mode(state) == 0o700
    for n in (1, 2):
        audit_evaluation({"id": f"e{n}", "language": "python", "status": "succeeded"},
                         {"user": "ann", "code_sha256": "ab"})  # fmt: skip
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["event"], e["eval_id"], e["user"]) for e in events[-2:]] == [
        ("evaluation", "e1", "ann"),
        ("evaluation", "e2", "ann"),
    ]
    assert '"eval_id": "e2"' in capsys.readouterr().out  # and stdout, for log shippers


def test_secrets_reach_replicas_through_private_files_only(tmp_path):
    url = "postgresql+psycopg://crucible:pa55word@db/crucible"
    settings = Settings(state_dir=tmp_path, database_url=url, jwt_secret=SECRET)
    assert settings.write_shared_secrets() == {"database_url", "jwt_secret"}
    public = settings.public()
    assert "pa55word" not in json.dumps(public) and SECRET not in json.dumps(public)
    secrets = tmp_path / "secrets"
    assert mode(secrets) == 0o700
    assert {p.name: mode(p) for p in secrets.iterdir()} == {
        "crucible_database_url": 0o600,
        "crucible_jwt_secret": 0o600,
    }
    replica = load_settings(public)  # as an ingress replica or the dispatcher reads them
    assert replica.db_url == url and replica.secret == SECRET
    assert replica.dispatcher.store_url() is None  # no store unless deploy() names one
    assert settings.write_shared_secrets() == set()  # unchanged: nothing rewritten
    unset = Settings(state_dir=tmp_path, jwt_secret=SECRET)
    assert unset.write_shared_secrets() == {"database_url"}  # a stale URL file is removed
    assert load_settings(unset.public()).db_url == f"sqlite:///{tmp_path / 'crucible.db'}"


def test_a_cluster_dispatcher_without_the_database_url_refuses_to_start(tmp_path, monkeypatch):
    from crucible_ray.execution import DispatcherConfig

    monkeypatch.delenv("CRUCIBLE_DATABASE_URL", raising=False)
    config = DispatcherConfig(store_state_dir=str(tmp_path), store_needs_database_url=True)
    with pytest.raises(RuntimeError, match="CRUCIBLE_DATABASE_URL"):
        config.store_url()
    url = "postgresql+psycopg://crucible:pw@db/crucible"
    monkeypatch.setenv("CRUCIBLE_DATABASE_URL", url)  # as the pod's Secret sets it
    assert config.store_url() == url


def test_a_generated_secret_is_created_once_whole_and_private(tmp_path):
    made: list[str] = []

    def make() -> str:
        value = f"secret-{len(made)}-" + "x" * 4096  # long: a half-written read would show
        made.append(value)
        return value

    seen: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        seen.append(generated_secret(tmp_path, "shared", make).read_text())

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and seen[0] in made  # every process reads the one winner
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # no draft left behind
    key = Settings(state_dir=tmp_path).queue_key_bytes
    assert key == Settings(state_dir=tmp_path).queue_key_bytes and len(key) == 32
    (tmp_path / "queue-key").chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        Settings(state_dir=tmp_path).queue_key_bytes  # noqa: B018
