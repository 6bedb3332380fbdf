"""The audit log: one structured JSON event per evaluation and per security-relevant refusal.

Events go to stdout (for log shippers) and, once :func:`audit_to_file` is called (the ingress
replicas and the dispatcher do), to a dedicated append-only 0600 file in the private state
directory: not to Ray's log directory, where any local account could read or delete them.
They never carry the code, only its SHA-256.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import structlog

from crucible_ray.store.files import private_dir, private_file

AUDIT_FILE = "audit.log"
_lock = threading.Lock()
_configured = False
_files: set[Path] = set()


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when the event is written, not when the handler
    was made (a host that replaces stdout, like pytest's capture, still gets every line)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _stdlib_logger() -> logging.Logger:
    """The one logger events are written through: each handler writes a whole line at once."""
    logger = logging.getLogger("crucible.audit")
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not into whatever the host process's root logger does
    return logger


def audit_logger() -> Any:
    global _configured
    with _lock:
        if not _configured:
            stdout = _CurrentStdout(sys.stdout)
            stdout.setFormatter(logging.Formatter("%(message)s"))
            _stdlib_logger().addHandler(stdout)
            structlog.configure(
                processors=[
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(sort_keys=True),
                ],
                logger_factory=structlog.stdlib.LoggerFactory(),
                cache_logger_on_first_use=True,
            )
            _configured = True
    return structlog.get_logger("crucible.audit")


def audit_to_file(state_dir: Path) -> Path:
    """Also append every event to ``state_dir/audit.log`` (0600, in a 0700 directory)."""
    path = private_dir(state_dir) / AUDIT_FILE
    with _lock:
        if path not in _files:
            private_file(path)  # created 0600 before the handler opens it (mode "a": O_APPEND)
            handler = logging.FileHandler(path, mode="a", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            _stdlib_logger().addHandler(handler)
            _files.add(path)
    return path


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
        error_code=result.get("error_code"),
        security_events=(result.get("security") or {}).get("counts") or None,
    )
    for event in (result.get("security") or {}).get("events", []):
        if event.get("alert"):  # each one an operator may have to act on, with who did it
            audit_logger().warning("security_event", eval_id=result["id"],
                                   user=context.get("user"), language=result["language"],
                                   **event)  # fmt: skip


def audit_admission(eval_id: str, user: str, client: str | None, code_sha256: str,
                    language: str) -> None:  # fmt: skip
    """On the queue plane, one event when an evaluation is admitted: the process that writes
    its ``evaluation`` event at the end (a Dispatch actor) never sees the client, so who sent
    what is told here, under the same ``eval_id``."""
    audit_logger().info("admitted", eval_id=eval_id, user=user, client=client,
                        code_sha256=code_sha256, language=language)  # fmt: skip


def audit_action(event: str, **fields: Any) -> None:
    """A change a user made to their stored data (a test set stored or deleted)."""
    audit_logger().info(event, **fields)


def audit_refusal(event: str, **fields: Any) -> None:
    """Auth failures, rate-limit hits, overload refusals."""
    audit_logger().warning(event, **fields)
