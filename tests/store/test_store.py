"""EvalStore against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crucible_ray.judge.models import JudgeTest
from crucible_ray.judge.testsets import canonical_tests, content_id
from crucible_ray.models import EvalResult, EvalStatus, utcnow
from crucible_ray.store import EvalStore, NewEvaluation
from crucible_ray.store.tables import StoredTestSet

SECRET_CODE = "print('the code itself must never be stored')"


def new(eval_id: str, user: str = "alice", **fields) -> NewEvaluation:
    return NewEvaluation(id=eval_id, user=user, code=SECRET_CODE, language="python", **fields)


def final(eval_id: str, status: EvalStatus = EvalStatus.SUCCEEDED, **fields) -> EvalResult:
    return EvalResult(
        id=eval_id, status=status, language="python", exit_code=0, stdout="ok\n",
        runtime="runsc", duration_ms=12.5, finished_at=utcnow(), **fields,
    )  # fmt: skip


def test_accepted_then_finished_exactly_once(store):
    store.add([new("e1", warnings=["uses eval"], metadata={"task": 7})])
    queued = store.get("alice", "e1")
    assert queued.status == "queued" and queued.warnings == ["uses eval"]
    assert queued.metadata == {"task": 7} and queued.created_at.tzinfo is not None
    store.mark_running("e1")
    assert store.get("alice", "e1").status == "running"
    assert store.finish(final("e1")) is True
    assert store.finish(final("e1", EvalStatus.ERROR, error="late duplicate")) is False
    done = store.get("alice", "e1")
    assert (done.status, done.stdout, done.exit_code, done.runtime) == (
        "succeeded",
        "ok\n",
        0,
        "runsc",
    )
    assert done.warnings == ["uses eval"] and done.metadata == {"task": 7}


def test_other_users_records_are_invisible(store):
    store.add([new("mine", "alice"), new("theirs", "bob")])
    assert store.get("alice", "theirs") is None and store.get("alice", "missing") is None
    assert [r.id for r in store.for_user("alice")] == ["mine"]


def test_code_is_stored_only_as_its_hash(store):
    import hashlib

    store.add([new("e1")])
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM evaluations")).mappings().one()
    assert SECRET_CODE not in str(dict(row))
    assert row["code_sha256"] == hashlib.sha256(SECRET_CODE.encode()).hexdigest()


def test_batches_erasure_purge_and_unfinished(store):
    store.add(
        [new(f"b{i}", batch_id="batch-1", batch_index=i) for i in range(5)] + [new("other", "bob")]
    )
    for i in range(3):
        store.finish(final(f"b{i}"))
    assert store.batch_counts("alice", "batch-1") == {"succeeded": 3, "queued": 2}
    assert store.batch_counts("bob", "batch-1") == {}
    assert [r.id for r in store.batch("alice", "batch-1")] == [f"b{i}" for i in range(5)]
    assert sorted(store.unfinished()) == ["b3", "b4", "other"]
    assert store.delete_user("alice") == 5 and store.get("alice", "b0") is None
    assert store.purge(timedelta(days=1)) == 0
    assert store.purge(timedelta(seconds=-1)) == 1  # everything is older than "1 s from now"


def test_one_failing_row_records_nothing(store):
    store.add([new("dup")])
    with pytest.raises(IntegrityError):  # SQLAlchemy's, whichever the driver
        store.add([new("fresh"), new("dup")])
    assert store.get("alice", "fresh") is None


def test_columns_added_to_the_model_are_added_to_an_old_table(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the table as an older version created it
        conn.execute(
            "CREATE TABLE evaluations (id VARCHAR(64) PRIMARY KEY, user VARCHAR(128), "
            "batch_id VARCHAR(64), status VARCHAR(16), language VARCHAR(32), "
            "code_sha256 VARCHAR(64), exit_code INTEGER, stdout TEXT, stderr TEXT, "
            "truncated BOOLEAN, oom_killed BOOLEAN, duration_ms FLOAT, runtime VARCHAR(16), "
            "created_at DATETIME, finished_at DATETIME, warnings JSON, error TEXT, metadata JSON)"
        )
    store = EvalStore(f"sqlite:///{path}")
    store.add([new("e1", batch_id="b", batch_index=0)])
    assert [r.id for r in store.batch("alice", "b")] == ["e1"]


def test_sqlite_files_are_private_whatever_the_umask(tmp_path):
    """Everyone's results are in these files: no other local account may read them."""
    import os

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    old_db = state / "old.db"
    old_db.touch(mode=0o644)  # as an install from before left it
    old_db.chmod(0o644)
    previous = os.umask(0)  # the loosest: modes must not depend on it
    try:
        store = EvalStore(f"sqlite:///{state / 'crucible.db'}")
        store.add([new("m1")])
        store.finish(final("m1"))
        EvalStore(f"sqlite:///{old_db}").ping()
    finally:
        os.umask(previous)
    for name in ("crucible.db", "crucible.db-wal", "crucible.db-shm", "old.db"):
        assert (state / name).stat().st_mode & 0o777 == 0o600, name


def test_long_reads_hold_no_connection_between_pages(store):
    ids = [f"p{i:04d}" for i in range(401)]  # three pages of the store's 200 rows
    store.add([new(eval_id, batch_id="big", batch_index=i) for i, eval_id in enumerate(ids)])
    for stream in (store.for_user("alice"), store.batch("alice", "big")):
        first = next(stream)
        # A slow reader between pages: no session open, no pooled connection checked out.
        assert store.engine.pool.checkedout() == 0
        assert [first.id] + [r.id for r in stream] == ids  # every row once, in order


def test_a_store_made_while_its_database_is_down_works_once_it_is_up(tmp_path):
    from sqlalchemy.exc import OperationalError

    missing = tmp_path / "not-yet"  # SQLite cannot open a file in a missing directory
    store = EvalStore(f"sqlite:///{missing / 'store.db'}")
    with pytest.raises(OperationalError):
        store.add([new("e1")])
    missing.mkdir()  # the database is back
    store.add([new("e1")])
    assert store.get("alice", "e1").status == "queued"


def test_test_sets_are_stored_once_per_user_and_read_back(store):
    tests = [JudgeTest(stdin="1 2", expected_stdout="3"), JudgeTest(stdin="", expected_stdout="0")]
    canonical = canonical_tests(tests)
    retention = timedelta(days=30)
    info, created = store.put_testset("alice", canonical, len(tests), retention)
    assert created and info.id == content_id(canonical) and info.id.startswith("sha256:")
    assert (info.tests, info.bytes) == (2, len(canonical))
    assert info.expires_at == info.used_at + retention
    again, created = store.put_testset("alice", canonical, len(tests), retention)
    assert not created and again.id == info.id and again.created_at == info.created_at
    assert store.testset_tests("alice", info.id) == tests
    assert store.testset_tests("bob", info.id) is None  # another user's is not theirs
    assert store.testset_info("bob", info.id, retention) is None
    assert [i.id for i in store.testsets("alice", retention)] == [info.id]
    store.put_testset("bob", canonical, len(tests), retention)  # bob's own copy
    assert store.delete_testset("alice", info.id) is True
    assert store.delete_testset("alice", info.id) is False
    assert store.testset_tests("alice", info.id) is None
    assert store.testset_tests("bob", info.id) == tests


def test_test_sets_are_erased_with_their_user_and_purged_when_unused(store):
    retention = timedelta(days=30)
    fresh, stale = (canonical_tests([JudgeTest(expected_stdout=str(n))]) for n in (1, 2))
    store.put_testset("alice", fresh, 1, retention)
    store.put_testset("alice", stale, 1, retention)
    store.put_testset("carol", fresh, 1, retention)
    store.add([new("e1")])
    with store.engine.begin() as conn:  # as if unused for two days
        conn.execute(StoredTestSet.__table__.update()
                     .where(StoredTestSet.id == content_id(stale))
                     .values(used_at=utcnow() - timedelta(days=2)))  # fmt: skip
    assert store.purge(timedelta(days=1)) == 1  # the stale set; the evaluation is new
    assert [i.id for i in store.testsets("alice", retention)] == [content_id(fresh)]
    assert store.delete_user("alice") == 2  # the evaluation and the remaining set
    assert store.testsets("alice", retention) == []
    assert [i.id for i in store.testsets("carol", retention)] == [content_id(fresh)]
