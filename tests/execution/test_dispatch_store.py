"""Dispatch's calls against a real PostgreSQL, in this process (no Ray needed for what is
tested here: admission checks and a result the store refuses)."""

from __future__ import annotations

import pytest

from crucible_ray.execution.config import DispatcherConfig
from crucible_ray.execution.dispatch import LEASE_LOST, Dispatch
from crucible_ray.execution.work import EVAL, JUDGE
from crucible_ray.models import EvalResult, EvalStatus, utcnow
from crucible_ray.settings import Settings
from tests.support.postgres import fresh_database


@pytest.fixture
def dispatch(postgres_url, tmp_path) -> Dispatch:
    url = fresh_database(postgres_url, "dispatch_store")
    Settings(state_dir=tmp_path, database_url=url).write_shared_secrets()
    config = DispatcherConfig(store_state_dir=str(tmp_path), max_pending=4, max_actors=1)
    return Dispatch(config.model_dump())


def result(eval_id: str, **fields) -> dict:
    done = EvalResult(id=eval_id, status=EvalStatus.SUCCEEDED, language="python", exit_code=0,
                      stdout="ok\n", finished_at=utcnow(), **fields)  # fmt: skip
    return done.model_dump(mode="json")


def test_admission_checks_the_request_and_the_limits(dispatch):
    refused = dispatch.admit("alice", [("x1", EVAL, {"code": "print(1)", "language": "cobol"})])
    assert (refused["accepted"], refused["reason"], refused["field"]) == (
        False, "invalid", "language")  # fmt: skip
    bad_judge = dispatch.admit("alice", [("x2", JUDGE, {"code": "print(1)", "tests": []})])
    assert bad_judge["reason"] == "invalid"
    ok = [(f"a{i}", EVAL, {"code": f"print({i})"}) for i in range(3)]
    assert dispatch.admit("alice", ok) == {"accepted": True}
    full = dispatch.admit("bob", [("b1", EVAL, {"code": "print(1)"}),
                                  ("b2", EVAL, {"code": "print(2)"})])  # fmt: skip
    assert (full["reason"], full["retry_after_s"]) == ("overloaded", 1.0)
    assert dispatch.result("alice", "a0")["status"] == "queued"
    assert dispatch.result("bob", "a0") is None  # not his
    # Idempotent by id: a resend is accepted and records nothing new; a taken id is refused.
    assert dispatch.admit("alice", ok) == {"accepted": True, "duplicate": True}
    assert dispatch.depth()["queued"] == 3
    taken = dispatch.admit("bob", [("a0", EVAL, {"code": "print(1)"})])
    assert (taken["accepted"], taken["field"]) == (False, "id")


def test_a_result_the_store_refuses_ends_as_an_error_and_blocks_nothing(dispatch):
    assert dispatch.admit("alice", [("a1", EVAL, {"code": "print(1)"}),
                                    ("a2", EVAL, {"code": "print(2)"})])["accepted"]  # fmt: skip
    token = dispatch.register("ex1")
    claimed = dispatch.exchange("ex1", token, [], [], 2)
    assert sorted(eval_id for eval_id, _, _ in claimed) == ["a1", "a2"]
    poison = result("a1", backend="b" * 200)  # longer than the column: the store refuses it
    assert dispatch.exchange("ex1", token, [poison, result("a2")], [], 1) == []
    assert dispatch.result("alice", "a2")["stdout"] == "ok\n"
    refused = dispatch.result("alice", "a1")
    assert (refused["status"], refused["error_code"]) == ("error", "internal")
    assert dispatch.depth() == {"queued": 0, "running": 0, "users": 0}
    assert dispatch.exchange("ex1", "stale", [], [], 1) == LEASE_LOST


def test_finished_answers_only_the_users_final_results(dispatch):
    assert dispatch.limits() == {"admission_limit": 4, "user_admission_limit": 4}
    assert dispatch.admit("alice", [("f1", EVAL, {"code": "print(1)"}),
                                    ("f2", EVAL, {"code": "print(2)"})])["accepted"]  # fmt: skip
    token = dispatch.register("ex1")
    dispatch.exchange("ex1", token, [], [], 2)
    assert dispatch.finished("alice", ["f1", "f2"]) == []  # running
    dispatch.exchange("ex1", token, [result("f1")], [], 0)
    assert [r["id"] for r in dispatch.finished("alice", ["f1", "f2", "nope"])] == ["f1"]
    assert dispatch.finished("bob", ["f1"]) == []  # not his
