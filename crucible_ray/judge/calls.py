"""Function and assert tests on the host: what is sent for them, and what their results mean.

Pure functions. The values cross the sandbox as typed JSON (tuples, sets, bytes, big integers
kept apart from lists and numbers); the codec is the driver's own (``encode``/``decode`` in
``images/launchers/judge.py``, loaded from that file: one source of truth on both sides).

A function test's result is the solution host's frames: the submission's function names (or
its import error), then the call's answer: the returned value, compared here as JSON with the
request's comparison, or what the function raised. An assert test's result is the checker's
outcome; it passed only if it carries the test's token.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from crucible_ray.judge.compare import CompareSpec, Comparison, compare
from crucible_ray.judge.verdicts import signal_name


def _load_codec() -> Any:
    path = resources.files("crucible_ray.images").joinpath("launchers", "judge.py")
    spec = importlib.util.spec_from_file_location("crucible_ray_judge_codec", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines only: its main() runs as __main__ alone
    return module


_codec = _load_codec()
encode, decode, Unencodable = _codec.encode, _codec.decode, _codec.Unencodable
NOT_DATA = Unencodable.__name__  # the solution host's "raised" type for a value that is not data


@dataclass(frozen=True)
class Outcome:
    """What a function or assert test's result says: a comparison (AC/WA), or why the
    submission failed (``error``: RE), or that the result was forged (``tampered``)."""

    comparison: Comparison | None = None
    error: str | None = None
    tampered: bool = False


def function_payload(entry_point: str, args: list[Any], kwargs: dict[str, Any]) -> bytes:
    return _codec.frame({"name": entry_point, "args": encode(args), "kwargs": encode(kwargs)})


def assert_payload(code: str, candidate: str | None) -> bytes:
    return json.dumps({"code": code, "candidate": candidate}).encode()


def frames(data: bytes) -> list[Any]:
    """The complete frames in ``data`` (what follows a malformed one is dropped)."""
    messages, offset = [], 0
    while offset + 8 <= len(data):
        size = data[offset : offset + 8]
        if not size.isdigit() or offset + 8 + int(size) > len(data):
            break
        try:
            messages.append(json.loads(data[offset + 8 : offset + 8 + int(size)]))
        except (ValueError, RecursionError):
            break
        offset += 8 + int(size)
    return messages


def function_outcome(result: bytes, expected: Any, spec: CompareSpec) -> Outcome:
    messages = [m for m in frames(result) if isinstance(m, dict)]
    if messages and "import_error" in messages[0]:
        return Outcome(error=f"the submission failed to import: {messages[0]['import_error']}")
    answer = messages[1] if len(messages) > 1 else None
    if answer is None:
        return Outcome(error="the submission's process ended before the function returned")
    if "raised" in answer and isinstance(answer["raised"], dict):
        kind, message = answer["raised"].get("type"), answer["raised"].get("message")
        if kind == NOT_DATA:
            return Outcome(Comparison(False, None, f"the function {message}"))
        return Outcome(error=f"the function raised {kind}: {message}")
    try:
        got = as_json(decode(answer["value"]))
    except KeyError:
        return Outcome(error="the submission's process sent no return value")
    except (ValueError, TypeError, RecursionError) as exc:
        return Outcome(Comparison(False, None, f"the return value is not JSON: {exc}"))
    return Outcome(compare(json.dumps(got), json.dumps(expected), spec))


def as_json(value: Any) -> Any:
    """A decoded return value as the JSON it is compared as: tuples and sets are lists (a set
    sorted when it can be), keys as json.dumps writes them. TypeError for what JSON cannot
    hold (bytes, complex, a tuple as a key)."""
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, set | frozenset):
        items = [as_json(item) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, dict):
        return json.loads(json.dumps({k: as_json(v) for k, v in value.items()}))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a {type(value).__name__} has no JSON form")


def assert_outcome(result: bytes, token: str, checker_signal: int | None) -> Outcome:
    try:
        outcome = json.loads(result) if result else None
    except (ValueError, RecursionError):
        outcome = None
    if not isinstance(outcome, dict):
        killed = signal_name(checker_signal)
        ended = f" (the checker was killed by {killed})" if killed else ""
        return Outcome(error=f"the test ended without an outcome{ended}")
    if outcome.get("passed") is True:
        given = outcome.get("token")
        if isinstance(given, str) and hmac.compare_digest(given, token):
            return Outcome(Comparison(True, None))
        return Outcome(tampered=True)
    if "import_error" in outcome:
        return Outcome(error=f"the submission failed to import: {outcome['import_error']}")
    if outcome.get("solution_ended"):
        return Outcome(error="the submission's process ended during a call")
    for key in ("failed", "raised", "error"):
        where = outcome.get(key)
        if isinstance(where, dict):
            return _failure(key, where)
    return Outcome(error="the test ended without an outcome")


def _failure(key: str, where: dict[str, Any]) -> Outcome:
    kind, message = where.get("type"), where.get("message")
    line, source = where.get("line"), where.get("source")
    at = f" at line {line} of the test" if line else ""
    code = f": {source}" if source else ""
    if key == "failed":
        why = f" ({message})" if message else ""
        return Outcome(Comparison(False, None, f"assertion failed{at}{code}{why}"))
    who = "the submission" if key == "raised" else "the test"
    return Outcome(error=f"{who} raised {kind}: {message}{at}{code}")
