"""The one exception hierarchy of crucible-ray.

Everything the package raises on purpose derives from :class:`CrucibleError`, so callers can
catch one type. Two families matter to callers:

* :class:`InvalidRequest` - the request itself is wrong (unknown language, code too large...).
  Retrying the same request will fail the same way.
* :class:`SandboxUnavailable` - the platform cannot run sandboxes *safely* right now (engine
  down, gVisor runtime missing, image missing, no executor). Fail secure: nothing runs with a
  weaker setup.
* :class:`Overloaded` - admission is full; ``retry_after_s`` says when to try again.
  :class:`RateLimited` is its per-user cousin.

The HTTP client adds :class:`AuthenticationError`, :class:`NotFound`, :class:`ServiceUnavailable`
(503 or unreachable), :class:`ServerError` and :class:`DeadlineExceeded` (its retries or its wait
ran out of time); every HTTP status maps to exactly one of these.

A program that misbehaves (crashes, times out, floods output) is *not* an exception: it is an
``EvalResult`` with the matching status.
"""

from __future__ import annotations


class CrucibleError(Exception):
    """Base class of every error raised by crucible-ray."""


class InvalidRequest(CrucibleError):
    """The evaluation request is malformed; the message names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedLanguage(InvalidRequest):
    """The requested language has no sandbox image."""


class SandboxUnavailable(CrucibleError):
    """Sandboxes cannot be started safely right now; evaluations are refused."""


class EngineUnavailable(SandboxUnavailable):
    """The Docker engine cannot be reached."""


class RuntimeUnavailable(SandboxUnavailable):
    """The configured container runtime (gVisor by default) is not registered or not working."""


class ImageMissing(SandboxUnavailable):
    """The sandbox image for a language has not been built on this engine."""


class ImageUntrusted(ImageMissing):
    """The image is there, but its signature (or its SBOM) does not verify against a trusted
    key: it is refused like a missing one."""


class EngineInterrupted(CrucibleError):
    """The container engine (or an operator) stopped a sandbox while the program ran."""


class NoExecutors(SandboxUnavailable):
    """No executor is running or can be started to take the evaluation."""


class Overloaded(CrucibleError):
    """Admission is full: running plus queued evaluations reached the limit. Retry later."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(Overloaded):
    """The user's rate limit is used up. Retry after ``retry_after_s``."""


class AuthenticationError(CrucibleError):
    """The server refused the credentials (missing, malformed, expired or wrongly signed)."""


class NotFound(CrucibleError):
    """No such evaluation or batch for this user."""


class ServiceUnavailable(SandboxUnavailable):
    """The server answered 503 (no executor can take work) or could not be reached."""


class ServerError(CrucibleError):
    """The server failed unexpectedly (a 5xx other than 503)."""


class DeadlineExceeded(CrucibleError):
    """The call's deadline passed while retrying or waiting; ``last_error`` says what was seen."""

    def __init__(self, message: str, *, last_error: Exception | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class SandboxFault(CrucibleError):
    """A sandbox broke for reasons of the platform, not of the program (e.g. gVisor aborted).

    Raised only where a retry is safe because the submitted code never started.
    """


class SandboxStartFailed(CrucibleError):
    """A sandbox could not be started although this machine can run sandboxes (its engine and
    runtime answer): a transient failure of this one evaluation, which may run elsewhere."""


class LeaseLost(CrucibleError):
    """An executor's lease on its claimed work lapsed or was replaced: that work was queued
    again (or ended), so the executor's results for it are not recorded. It must register
    again before it claims more."""
