"""What the dashboard shows from the records: throughput per minute, latency percentiles,
outcomes, and the most recent evaluations (every user's: operators only)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from crucible_ray.models import utcnow
from crucible_ray.store.schema import aware as _aware
from crucible_ray.store.store import EvalStore
from crucible_ray.store.tables import Evaluation

MAX_ROWS = 50_000  # newest first; enough for percentiles, bounded whatever the traffic


def activity(store: EvalStore, window: timedelta, recent: int = 20) -> dict[str, Any]:
    now = utcnow()
    since = now - window
    columns = (Evaluation.status, Evaluation.duration_ms, Evaluation.created_at,
               Evaluation.finished_at)  # fmt: skip
    with store._session() as session:
        rows = session.execute(
            select(*columns).where(Evaluation.created_at >= since)
            .order_by(Evaluation.created_at.desc()).limit(MAX_ROWS)
        ).all()  # fmt: skip
        latest = session.execute(
            select(Evaluation.id, Evaluation.user, Evaluation.language, Evaluation.status,
                   Evaluation.duration_ms, Evaluation.created_at, Evaluation.finished_at)
            .order_by(Evaluation.created_at.desc()).limit(recent)
        ).all()  # fmt: skip
    outcomes: Counter[str] = Counter()
    per_minute: dict[datetime, Counter[str]] = defaultdict(Counter)
    durations, latencies = [], []
    for status, duration_ms, created_at, finished_at in rows:
        outcomes[status] += 1
        finished = _aware(finished_at)
        if finished is None:
            continue
        per_minute[finished.replace(second=0, microsecond=0)][status] += 1
        if duration_ms is not None:
            durations.append(duration_ms)
        latencies.append((finished - _aware(created_at)).total_seconds() * 1000)  # type: ignore[operator]
    minutes = [since.replace(second=0, microsecond=0) + timedelta(minutes=i)
               for i in range(int(window.total_seconds() // 60) + 1)]  # fmt: skip
    return {
        "window_s": window.total_seconds(),
        "outcomes": dict(outcomes),
        "per_minute": [
            {
                "minute": m.isoformat(),
                "finished": sum(per_minute[m].values()),
                "by_status": dict(per_minute[m]),
            }
            for m in minutes
        ],
        "duration_ms": _percentiles(durations),
        "latency_ms": _percentiles(latencies),
        "recent": [
            {
                "id": r.id,
                "user": r.user,
                "language": r.language,
                "status": r.status,
                "duration_ms": r.duration_ms,
                "created_at": _iso(r.created_at),
                "finished_at": _iso(r.finished_at),
            }
            for r in latest
        ],
    }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)

    return {"p50": at(0.5), "p95": at(0.95), "n": len(ordered)}


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware else None
