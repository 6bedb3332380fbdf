"""crucible-ray: run untrusted code safely and at volume.

Public API::

    from crucible_ray import Client            # a crucible-ray server over HTTP

    with Client() as client:                   # CRUCIBLE_URL / CRUCIBLE_TOKEN
        result = client.evaluate("print(42)")

    from crucible_ray import SandboxRunner, EvalRequest   # sandboxes on this machine

    with SandboxRunner(warm=1) as runner:
        result = runner.run(EvalRequest(code="print(42)"))
"""

from crucible_ray._version import __version__
from crucible_ray.client import AsyncClient, Client, ClientConfig
from crucible_ray.errors import (
    AuthenticationError,
    CrucibleError,
    DeadlineExceeded,
    EngineUnavailable,
    ImageMissing,
    ImageUntrusted,
    InvalidRequest,
    NoExecutors,
    NotFound,
    Overloaded,
    RateLimited,
    RuntimeUnavailable,
    SandboxFault,
    SandboxUnavailable,
    ServerError,
    ServiceUnavailable,
    UnsupportedLanguage,
)
from crucible_ray.judge import CompareSpec, JudgeRequest, JudgeResult, Verdict
from crucible_ray.languages import LANGUAGES
from crucible_ray.models import (
    CompileResult,
    EvalRequest,
    EvalResult,
    EvalStatus,
    LanguageInfo,
    SecurityEvent,
    SecuritySummary,
)
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import SandboxBackend, SandboxRunner, make_backend

__all__ = [
    "LANGUAGES",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientConfig",
    "CompareSpec",
    "CompileResult",
    "CrucibleError",
    "DeadlineExceeded",
    "EngineUnavailable",
    "EvalRequest",
    "EvalResult",
    "EvalStatus",
    "ImageMissing",
    "ImageUntrusted",
    "InvalidRequest",
    "JudgeRequest",
    "JudgeResult",
    "LanguageInfo",
    "NoExecutors",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "RuntimeUnavailable",
    "SandboxBackend",
    "SandboxFault",
    "SandboxPolicy",
    "SandboxRunner",
    "SandboxUnavailable",
    "SecurityEvent",
    "SecuritySummary",
    "ServerError",
    "ServiceUnavailable",
    "UnsupportedLanguage",
    "Verdict",
    "__version__",
    "make_backend",
]
