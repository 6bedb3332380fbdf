"""The wire protocol, shared by Client and AsyncClient: what to send, and what an answer
means (every HTTP status maps to a result or to exactly one exception)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from crucible_ray._version import __version__
from crucible_ray.api.schemas import EvalSubmission, JudgeSubmission
from crucible_ray.client.config import ClientConfig
from crucible_ray.errors import (
    AuthenticationError,
    CrucibleError,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    ServerError,
    ServiceUnavailable,
)
from crucible_ray.judge.models import JudgeTest
from crucible_ray.judge.testsets import TestSet

REFUSAL_HEADER = "x-crucible-refusal"  # set by the server on 429: rate_limited or overloaded
KEY_HEADER = "Idempotency-Key"  # crucible_ray.api.idempotency: resending never runs twice


def new_key() -> str:
    """A fresh idempotency key: one per logical submission, kept across its retries."""
    return uuid.uuid4().hex


def key_headers(key: str | None) -> dict[str, str]:
    return {KEY_HEADER: key} if key else {}


def headers(config: ClientConfig) -> dict[str, str]:
    found = {"User-Agent": f"crucible-ray-client/{__version__}"}
    if config.token is not None:
        found["Authorization"] = f"Bearer {config.token.get_secret_value()}"
    return found


def body(code: str, language: str, stdin: str, timeout_s: float | None,
         metadata: dict[str, Any] | None, image: str | None = None) -> dict[str, Any]:  # fmt: skip
    item = {"code": code, "language": language, "image": image, "stdin": stdin,
            "timeout_s": timeout_s, "metadata": metadata}  # fmt: skip
    return submission(item).model_dump(mode="json", exclude_none=True)


def judge_body(code: str, tests: Sequence[JudgeTest | dict[str, Any]] | None,
               testset: str | None, language: str, image: str | None,
               metadata: dict[str, Any] | None,
               options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A POST /api/judge body, validated with the server's own model first (a pydantic
    ValidationError names the field at fault)."""
    body = JudgeSubmission(code=code, tests=None if tests is None else list(tests),
                           testset=testset, language=language, image=image, metadata=metadata,
                           **options)  # fmt: skip
    return body.model_dump(mode="json", exclude_none=True)


def testset_body(tests: Sequence[JudgeTest | dict[str, Any]]) -> dict[str, Any]:
    return TestSet(tests=list(tests)).model_dump(mode="json")


def submission(item: EvalSubmission | dict[str, Any]) -> EvalSubmission:
    """Validate on the client with the server's own model: errors name the field early."""
    if isinstance(item, EvalSubmission):
        return item
    try:
        return EvalSubmission.model_validate(item)
    except ValueError as exc:  # pydantic's ValidationError
        errors = getattr(exc, "errors", lambda: [])()
        field = ".".join(str(p) for p in errors[0]["loc"]) if errors else None
        message = errors[0]["msg"] if errors else str(exc)
        raise InvalidRequest(message, field=field) from None


def retry_batch_with(error: CrucibleError, size: int, defer: bool) -> int | None:
    """After a batch of ``size`` items was refused: how many to send at once instead (0: none
    now, results in flight will free room), or None to wait per the retrier and resend.
    Overload refusals are not charged to the rate limit, so halving costs nothing."""
    overloaded = isinstance(error, Overloaded) and not isinstance(error, RateLimited)
    if overloaded and size > 1:
        return size // 2
    if overloaded and defer:
        return 0
    return None


def final_for_submission(error: CrucibleError) -> bool:
    """A 5xx answer to a submission may come after it was admitted: resending could run the
    program twice. 429 and 503 are refusals before admission and safe to retry."""
    return isinstance(error, ServerError)


def error_for(response: httpx.Response, *, has_token: bool = True) -> CrucibleError:
    """The exception an unsuccessful response stands for."""
    detail = _detail(response)
    code = response.status_code
    if code == 401 or code == 403:
        hint = "" if has_token else " (no token given: pass token= or set CRUCIBLE_TOKEN)"
        return AuthenticationError(f"{code}: {detail}{hint}")
    if code == 404:
        return NotFound(str(detail))
    if code in (413, 422):
        field, message = _first_field(detail)
        return InvalidRequest(message, field=field)
    if code == 429:
        retry_after = _retry_after(response)
        if response.headers.get(REFUSAL_HEADER) == "rate_limited":
            return RateLimited(str(detail), retry_after_s=retry_after)
        return Overloaded(str(detail), retry_after_s=retry_after)
    if code == 503:
        return ServiceUnavailable(str(detail))
    if code >= 500:
        return ServerError(f"{code}: {detail}")
    return CrucibleError(f"unexpected HTTP {code}: {detail}")


def transport_error(exc: httpx.TransportError, url: str, resendable: bool) -> CrucibleError:
    """Unreachable is retryable; a request that may have reached the server and created
    something is not resent (it could run twice)."""
    never_sent = httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    if resendable or isinstance(exc, never_sent):
        return ServiceUnavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}")
    return CrucibleError(
        f"connection to {url} failed after sending the request ({type(exc).__name__}: {exc});"
        " it may have been accepted: check before resubmitting"
    )


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
        return body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        return response.text or response.reason_phrase


def _first_field(detail: Any) -> tuple[str | None, str]:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", []) if p != "body"]
        return (".".join(loc) or None), str(detail[0].get("msg", detail))
    field = "code" if "code" in str(detail) else None
    return field, str(detail)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:  # an HTTP date: not sent by this server, be conservative
        return 5.0
