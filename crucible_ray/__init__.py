"""crucible-ray: run untrusted code safely and at volume.

Public API::

    from crucible_ray import SandboxRunner, EvalRequest

    with SandboxRunner(warm=1) as runner:
        result = runner.run(EvalRequest(code="print(42)"))
"""

from crucible_ray.errors import (
    CrucibleError,
    EngineUnavailable,
    ImageMissing,
    InvalidRequest,
    NoExecutors,
    Overloaded,
    RuntimeUnavailable,
    SandboxFault,
    SandboxUnavailable,
    UnsupportedLanguage,
)
from crucible_ray.languages import LANGUAGES
from crucible_ray.models import EvalRequest, EvalResult, EvalStatus
from crucible_ray.policy import SandboxPolicy
from crucible_ray.sandbox import Engine, SandboxRunner

__version__ = "0.1.0"

__all__ = [
    "LANGUAGES",
    "CrucibleError",
    "Engine",
    "EngineUnavailable",
    "EvalRequest",
    "EvalResult",
    "EvalStatus",
    "ImageMissing",
    "InvalidRequest",
    "NoExecutors",
    "Overloaded",
    "RuntimeUnavailable",
    "SandboxFault",
    "SandboxPolicy",
    "SandboxRunner",
    "SandboxUnavailable",
    "UnsupportedLanguage",
]
