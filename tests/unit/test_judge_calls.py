"""Function and assert tests on the host (pure): the typed-JSON codec both sides share, the
payloads, and what a result means."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from crucible_ray.judge import calls
from crucible_ray.judge.compare import CompareSpec
from crucible_ray.judge.limits import payload
from crucible_ray.judge.models import JudgeRequest

JSON = CompareSpec(mode="json")


def frame(message):
    return calls._codec.frame(message)


@pytest.mark.parametrize(
    "value",
    [
        None, True, 0, -3, 2**200, -(2**70), 1.5, "s", [1, [2]], (1, (2,)), {1, 2},
        frozenset({"a"}), {"a": 1}, {1: "x", (1, 2): [3]}, {"$tuple": 1}, b"\x00\xff",
        1 + 2j, {"nested": [({"k": (None,)},)]}, [], (), {},
    ],
)  # fmt: skip
def test_values_round_trip_with_their_types(value):
    wire = json.loads(json.dumps(calls.encode(value), allow_nan=False))
    back = calls.decode(wire)
    assert back == value and type(back) is type(value)


def test_non_finite_floats_round_trip():
    for value in (math.inf, -math.inf):
        assert calls.decode(calls.encode(value)) == value
    assert math.isnan(calls.decode(calls.encode(math.nan)))


def test_subclasses_travel_as_their_plain_value():
    class Loud(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    encoded = calls.encode([Loud(5), True])
    assert encoded == [5, True] and type(encoded[0]) is int


def test_objects_are_not_data():
    class Thing:
        pass

    for value in (Thing(), len, [object()]):
        with pytest.raises(calls.Unencodable):
            calls.encode(value)
    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(calls.Unencodable):
        calls.encode(deep)


@pytest.mark.parametrize(
    "wire",
    [{"$eval": "1"}, {"$tuple": "x"}, {"$int": 5}, {"$set": [[1]]}, {"$bytes": "@@"},
     {"$dict": [[1]]}],
)  # fmt: skip
def test_decode_refuses_what_encode_never_makes(wire):
    with pytest.raises((ValueError, TypeError)):
        calls.decode(wire)


def test_a_function_payload_is_one_call_frame():
    payload = calls.function_payload("Solution.f", [(1, 2)], {"k": None})
    assert calls.frames(payload) == [
        {"name": "Solution.f", "args": [{"$tuple": [1, 2]}], "kwargs": {"k": None}}
    ]


def names():
    return frame({"names": ["f"]})


def test_a_function_outcome_compares_the_returned_value_as_json():
    result = names() + frame({"value": calls.encode({"a": (1, 2.0)})})
    assert calls.function_outcome(result, {"a": [1, 2]}, JSON).comparison.matched
    wrong = calls.function_outcome(result, {"a": [1, 3]}, JSON).comparison
    assert not wrong.matched and wrong.mismatch is not None


def test_a_function_outcome_names_what_went_wrong():
    raised = names() + frame({"raised": {"type": "KeyError", "message": "'x'"}})
    assert calls.function_outcome(raised, 1, JSON).error == "the function raised KeyError: 'x'"
    not_data = names() + frame({"raised": {"type": "Unencodable", "message": "returned E"}})
    outcome = calls.function_outcome(not_data, 1, JSON)
    assert outcome.error is None and not outcome.comparison.matched
    imported = frame({"import_error": "SyntaxError: bad"})
    assert "failed to import: SyntaxError" in calls.function_outcome(imported, 1, JSON).error
    for cut in (b"", names(), names() + b"00000009{"):
        assert "ended before" in calls.function_outcome(cut, 1, JSON).error
    no_json = names() + frame({"value": calls.encode(b"raw")})
    assert "not JSON" in calls.function_outcome(no_json, 1, JSON).comparison.message


def test_as_json_turns_tuples_and_sets_into_lists():
    assert calls.as_json(((1, 2), {3, 1}, {1: (2,)})) == [[1, 2], [1, 3], {"1": [2]}]
    with pytest.raises(TypeError):
        calls.as_json(1j)


def outcome(message):
    return json.dumps(message).encode()


def test_an_assert_test_passes_only_with_its_token():
    assert calls.assert_outcome(outcome({"passed": True, "token": "t1"}), "t1", None).comparison
    forged = calls.assert_outcome(outcome({"passed": True, "token": "t0"}), "t1", None)
    assert forged.tampered and forged.comparison is None
    assert calls.assert_outcome(outcome({"passed": True}), "t1", None).tampered


def test_an_assert_failure_says_where():
    failed = {"failed": {"type": "AssertionError", "message": "", "line": 3, "source": "assert x"}}
    got = calls.assert_outcome(outcome(failed), "t", None).comparison
    assert not got.matched and got.message == "assertion failed at line 3 of the test: assert x"
    raised = {"raised": {"type": "ValueError", "message": "neg", "line": 1, "source": "f(-1)"}}
    assert calls.assert_outcome(outcome(raised), "t", None).error == (
        "the submission raised ValueError: neg at line 1 of the test: f(-1)"
    )
    error = {"error": {"type": "NameError", "message": "g", "line": None, "source": None}}
    assert calls.assert_outcome(outcome(error), "t", None).error == "the test raised NameError: g"
    ended = calls.assert_outcome(outcome({"solution_ended": True}), "t", None)
    assert "ended during a call" in ended.error
    killed = calls.assert_outcome(b"", "t", 9)
    assert killed.error == "the test ended without an outcome (the checker was killed by SIGKILL)"
    assert calls.assert_outcome(b"[1]", "t", None).error == "the test ended without an outcome"


def test_each_mode_takes_its_own_test_fields():
    JudgeRequest(code="x", mode="assert", tests=[{"code": "assert True"}])
    function = JudgeRequest(code="x", mode="function", entry_point="f", tests=[{"args": [1]}])
    assert function.compare.mode == "json"  # the default for return values
    assert JudgeRequest.model_validate(function.model_dump(mode="json")) == function
    command = JudgeRequest(
        code="x",
        mode="command",
        tests=[{"command": "python3 t.py", "files": {"t.py": "import main"}}],
    )
    assert JudgeRequest.model_validate(command.model_dump(mode="json")) == command
    assert json.loads(payload(command, 0)) == {"command": "python3 t.py",
                                               "files": {"t.py": "import main"}}  # fmt: skip
    refused = [
        {"mode": "command", "tests": [{"files": {"t.py": ""}}]},  # no command
        {"mode": "command", "tests": [{"command": "true", "files": {"../t.py": ""}}]},
        {"mode": "command", "tests": [{"command": "true", "files": {"a/b": ""}}]},
        {"mode": "command", "tests": [{"command": "true", "expected_stdout": "1"}]},
        {"mode": "command", "tests": [{"command": "true",
                                       "files": {f"f{i}": "" for i in range(17)}}]},
        {"mode": "stdio", "tests": [{"expected_stdout": "1", "command": "true"}]},
        {"mode": "function", "tests": [{"args": [1]}]},  # no entry point
        {"mode": "function", "entry_point": "f", "tests": [{"expected_stdout": "1"}]},
        {"mode": "function", "entry_point": "f", "compare": {"mode": "tokens"},
         "tests": [{"args": []}]},
        {"mode": "assert", "tests": [{"stdin": "x"}]},  # no code
        {"mode": "stdio", "tests": [{"expected_stdout": "1", "code": "assert 1"}]},
        {"mode": "function", "entry_point": "a.b.c", "tests": [{"args": []}]},
    ]  # fmt: skip
    for fields in refused:
        with pytest.raises(ValidationError):
            JudgeRequest(code="x", **fields)


def test_a_memory_limit_above_the_sandboxs_is_refused_naming_the_field():
    from crucible_ray.errors import InvalidRequest
    from crucible_ray.judge.limits import check_request
    from crucible_ray.languages import get_image
    from crucible_ray.policy import SandboxPolicy

    policy, spec = SandboxPolicy(memory_mb=100), get_image("python", None)
    tests = [{"stdin": "1", "expected_stdout": "1"}]
    check_request(JudgeRequest(code="x", tests=tests, limits={"memory_mb": 100}), policy, spec)
    with pytest.raises(InvalidRequest) as refused:
        check_request(JudgeRequest(code="x", tests=tests, limits={"memory_mb": 101}), policy,
                      spec)  # fmt: skip
    assert refused.value.field == "limits.memory_mb" and "100 MB" in str(refused.value)
