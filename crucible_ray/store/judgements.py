"""Judged submissions in the store: one row of the evaluations table each (``kind`` judge), so
that admission, idempotency, batches, retention and erasure treat them as evaluations; the
verdict, score and per-test results are the row's ``judgement``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import FINAL, CompileResult, EvalStatus, utcnow
from crucible_ray.store.schema import aware
from crucible_ray.store.tables import Evaluation

if TYPE_CHECKING:
    from crucible_ray.store.schema import Sessions

JUDGE = "judge"
# The JudgeResult fields kept in ``judgement`` (the rest are the row's columns).
_JUDGEMENT = ("verdict", "score", "passed", "total", "first_failure", "tests", "sandboxes",
              "compare_version", "driver_version", "security")  # fmt: skip


class JudgementRecords:
    _session: Sessions

    def finish_judgement(self, result: JudgeResult) -> bool:
        """Record a judged submission's final result unless one is already recorded."""
        with self._session.begin() as session:
            updated = session.execute(
                update(Evaluation)
                .where(Evaluation.id == result.id, Evaluation.kind == JUDGE,
                       Evaluation.status.not_in(FINAL))
                .values(**judgement_values(result))
            )  # fmt: skip
        return updated.rowcount == 1

    def get_judgement(self, user: str, judge_id: str) -> JudgeResult | None:
        """The caller's own judged submission (another user's is indistinguishable from none)."""
        with self._session() as session:
            row = session.get(Evaluation, judge_id)
            mine = row is not None and row.user == user and row.kind == JUDGE
            return judgement_of(row) if mine else None


def judgement_values(result: JudgeResult) -> dict[str, Any]:
    """The columns a final judged result sets on its record."""
    data = result.model_dump(mode="json")
    values: dict[str, Any] = {
        "status": result.status.value,
        "image": result.image,
        "runtime": result.runtime,
        "backend": result.backend,
        "duration_ms": result.duration_ms,
        "error": result.error,
        "error_code": result.error_code,
        "finished_at": result.finished_at or utcnow(),
        "compile": result.compile.model_dump() if result.compile else None,
        "judgement": {name: data[name] for name in _JUDGEMENT},
    }
    return values


def judgement_of(row: Evaluation) -> JudgeResult:
    judged = dict(row.judgement or {})
    if not judged and EvalStatus(row.status) is EvalStatus.ERROR:
        judged["verdict"] = "IE"  # ended by the platform before any judging (reconciliation)
    return JudgeResult(
        id=row.id,
        status=EvalStatus(row.status),
        language=row.language,
        image=row.image or row.language,
        runtime=row.runtime,
        backend=row.backend,
        duration_ms=row.duration_ms,
        compile=CompileResult.model_validate(row.compile) if row.compile else None,
        error=row.error,
        error_code=row.error_code,
        created_at=aware(row.created_at),
        finished_at=aware(row.finished_at),
        warnings=list(row.warnings or []),
        metadata=row.metadata_,
        **{"compare_version": COMPARE_VERSION, "driver_version": DRIVER_VERSION, **judged},
    )
