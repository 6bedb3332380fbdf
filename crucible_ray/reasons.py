"""Stable reason codes: why the platform failed an evaluation or refused a request.

Users see a code and a short sentence, both fixed here: never a traceback, a pid, a node
address, a file path or an engine message. The details go to the server log with the
evaluation's id. Codes are part of the API (README: "Reason codes"); add, never rename.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # an evaluation ended as `error` (EvalResult.error_code)
    EXECUTOR_LOST = "executor_lost"
    EXECUTOR_UNRESPONSIVE = "executor_unresponsive"
    EXECUTOR_CANNOT_RUN_SANDBOXES = "executor_cannot_run_sandboxes"
    SANDBOX_START_FAILED = "sandbox_start_failed"
    SANDBOX_FAULT = "sandbox_fault"
    ENGINE_FAILED = "engine_failed"
    ENGINE_INTERRUPTED = "engine_interrupted"
    QUEUE_TIMEOUT = "queue_timeout"
    LOST_BEFORE_RUN = "lost_before_run"
    INVALID_REQUEST = "invalid_request"
    CLIENT_STOPPED_WAITING = "client_stopped_waiting"
    INTERNAL = "internal"
    IMAGE_UNAVAILABLE = "image_unavailable"
    # a request was refused (the X-Crucible-Refusal header: 429, then 503)
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    TOO_MANY_WAITS = "too_many_waits"
    NO_EXECUTOR = "no_executor"
    STORE_UNAVAILABLE = "store_unavailable"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]


_SENTENCES: dict[Reason, str] = {
    Reason.EXECUTOR_LOST: "the executor running it was lost (its process or node died)",
    Reason.EXECUTOR_UNRESPONSIVE: "the executor running it stopped answering",
    Reason.EXECUTOR_CANNOT_RUN_SANDBOXES: "the executor's node could not run sandboxes",
    Reason.SANDBOX_START_FAILED: "a sandbox could not be started",
    Reason.SANDBOX_FAULT: "the sandbox failed before the program started",
    Reason.ENGINE_FAILED: "the container engine failed during the evaluation",
    Reason.ENGINE_INTERRUPTED: "the sandbox was stopped from outside the program "
    "(e.g. the container engine shutting down)",
    Reason.QUEUE_TIMEOUT: "no executor became available in time",
    Reason.LOST_BEFORE_RUN: "the service restarted before it ran",
    Reason.INVALID_REQUEST: "the request is invalid",
    Reason.CLIENT_STOPPED_WAITING: "the client stopped waiting for the result",
    Reason.INTERNAL: "an internal error; the operators have the details",
    Reason.IMAGE_UNAVAILABLE: "the sandbox image it asks for is not available on the executor"
    " (not built, or altered)",
    Reason.RATE_LIMITED: "the user's rate limit is used up",
    Reason.OVERLOADED: "the service is full",
    Reason.TOO_MANY_WAITS: "too many long polls of this user at once",
    Reason.NO_EXECUTOR: "no executor can take work now",
    Reason.STORE_UNAVAILABLE: "the result store is unavailable",
}


def error_fields(reason: Reason | None, detail: str | None = None) -> dict[str, str | None]:
    """``error``/``error_code`` of an EvalResult. ``detail`` must be safe for users (e.g. the
    field a validator named), never an exception's text."""
    if reason is None:
        return {}
    sentence = f"{reason.sentence}: {detail}" if detail else reason.sentence
    return {"error": sentence, "error_code": reason.value}
