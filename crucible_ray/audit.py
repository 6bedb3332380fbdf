"""The audit log: one structured JSON event per evaluation and per security-relevant refusal.

Events go to stdout through structlog (collected with the process's logs). They never carry
the code, only its SHA-256.
"""

from __future__ import annotations

from typing import Any

import structlog

_configured = False


def audit_logger() -> Any:
    global _configured
    if not _configured:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
            cache_logger_on_first_use=True,
        )
        _configured = True
    return structlog.get_logger("crucible.audit")


def audit_evaluation(result: dict[str, Any], context: dict[str, Any]) -> None:
    """One event when an evaluation ends (whatever its status)."""
    audit_logger().info(
        "evaluation",
        eval_id=result["id"],
        user=context.get("user"),
        client=context.get("client"),
        code_sha256=context.get("code_sha256"),
        language=result["language"],
        status=result["status"],
        duration_ms=result.get("duration_ms"),
        runtime=result.get("runtime"),
        error=result.get("error"),
    )


def audit_refusal(event: str, **fields: Any) -> None:
    """Auth failures, rate-limit hits, overload refusals."""
    audit_logger().warning(event, **fields)
