"""What Client and AsyncClient share: configuration and the retry budget of one call."""

from __future__ import annotations

from typing import Any

import httpx

from crucible_ray.client import protocol
from crucible_ray.client.config import ClientConfig
from crucible_ray.client.retry import Retrier
from crucible_ray.errors import CrucibleError, DeadlineExceeded
from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.models import JudgeResult
from crucible_ray.judge.verdicts import Verdict
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.reasons import Reason, error_fields


class ClientBase:
    config: ClientConfig

    def _configure(self, url: str | None, token: str | None, config: ClientConfig | None,
                   options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        """Set ``self.config``; return the httpx client's arguments."""
        self.config = config or ClientConfig.from_env(url=url, token=token, **options)
        # No connection cap: evaluate_many's concurrency bounds the long polls, and a capped
        # pool would make submissions time out waiting for a connection.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
        return {"base_url": self.config.url, "headers": protocol.headers(self.config),
                "timeout": self.config.request_timeout_s, "limits": limits}  # fmt: skip

    def _retrier(self, deadline_s: float | None = None) -> Retrier:
        c = self.config
        return Retrier(deadline_s or c.deadline_s, c.backoff_base_s, c.backoff_max_s)

    @staticmethod
    def _unfinished(eval_id: str, language: str, error: CrucibleError) -> EvalResult:
        """What evaluate_many yields for an evaluation it could not follow to the end: an
        ``error`` result naming the id (it may still finish: ``result(id)`` tells)."""
        why = "not finished in time" if isinstance(error, DeadlineExceeded) else str(error)
        return EvalResult(id=eval_id, status=EvalStatus.ERROR, language=language,
                          **error_fields(Reason.CLIENT_STOPPED_WAITING, why))  # fmt: skip


def unfinished_judgement(language: str, image: str | None, metadata: dict[str, Any] | None,
                         why: str, total: int = 0) -> JudgeResult:  # fmt: skip
    """A judging the client could not follow to the end: verdict IE and score null, so that an
    RL caller drops the sample instead of training on a fake zero."""
    return JudgeResult(id="", status=EvalStatus.ERROR, verdict=Verdict.IE, language=language,
                       image=image or language, compare_version=COMPARE_VERSION,
                       driver_version=DRIVER_VERSION, total=total, metadata=metadata,
                       **error_fields(Reason.CLIENT_STOPPED_WAITING, why))  # fmt: skip
