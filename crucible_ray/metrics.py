"""Every crucible metric, defined once.

Recorded with Ray's metrics pipeline (``ray.util.metrics``) where the event happens: the
dispatcher (admission, queue, outcomes), the executor actors (sandboxes) and the ingress
replicas (HTTP, auth, rate limits). Each node's metrics agent exports them on that node's
metrics port with a ``ray_`` prefix (a counter ``crucible_evaluations`` is scraped as
``ray_crucible_evaluations_total``), and Ray's service-discovery file lists every node, so one
Prometheus scrape job sees the whole cluster. Why not prometheus-client: each process would
need its own port, unknown to Ray's service discovery, and the ingress's ``/metrics`` would
show whichever replica answered. Tags stay low-cardinality: never ids or users.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)
EXPORT_PREFIX = "ray_"  # added by Ray's exporter
SECONDS_FAST = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SECONDS_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Literal["counter", "gauge", "histogram"]
    description: str
    tags: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()

    @property
    def exported(self) -> str:
        """The series name as Prometheus sees it (histograms add _bucket/_sum/_count)."""
        suffix = "_total" if self.kind == "counter" else ""
        return f"{EXPORT_PREFIX}{self.name}{suffix}"


SPECS: dict[str, MetricSpec] = {s.name: s for s in (
    # dispatcher: admission and outcomes
    MetricSpec("crucible_evaluations", "counter", "finished evaluations",
               ("status", "language", "runtime", "backend")),
    MetricSpec("crucible_evaluation_duration_seconds", "histogram",
               "wall time of the program itself", ("language", "status"), SECONDS_FAST),
    MetricSpec("crucible_evaluation_latency_seconds", "histogram",
               "admission to final result (queueing included)", ("language",), SECONDS_SLOW),
    MetricSpec("crucible_admitted", "counter", "evaluations admitted"),
    MetricSpec("crucible_rejected", "counter", "submissions refused", ("reason",)),
    MetricSpec("crucible_queue_depth", "gauge", "admitted evaluations waiting for a slot"),
    MetricSpec("crucible_running", "gauge", "evaluations running on executors"),
    MetricSpec("crucible_admission_limit", "gauge", "running + queued limit"),
    MetricSpec("crucible_slots", "gauge", "sandbox slots of ready executors"),
    MetricSpec("crucible_executors", "gauge", "executor actors", ("state",)),
    MetricSpec("crucible_executors_lost", "counter", "executor actors lost (actor or node died)"),
    MetricSpec("crucible_retries", "counter", "evaluations retried on another executor"),
    MetricSpec("crucible_store_write_failures", "counter",
               "failed writes of a final result to the store (each is retried)"),
    MetricSpec("crucible_timeouts", "counter", "evaluations killed by the wall clock",
               ("language",)),
    MetricSpec("crucible_oom_kills", "counter", "programs killed for memory", ("language",)),
    MetricSpec("crucible_permission_denials", "counter",
               "programs that met a permission or seccomp denial (a sign of probing)",
               ("language",)),
    MetricSpec("crucible_security_events", "counter",
               "runtime security events in sandboxes (gVisor trace points matched by a rule)",
               ("rule", "alert", "language")),
    MetricSpec("crucible_security_trace_incomplete", "counter",
               "monitored sandboxes whose trace stream was not read whole (or not valid)",
               ("language",)),
    # executor actors: sandboxes
    MetricSpec("crucible_sandboxes_running", "gauge", "sandboxes running a program, per actor"),
    MetricSpec("crucible_sandbox_boot_seconds", "histogram", "time to boot one sandbox",
               ("language", "backend"), SECONDS_SLOW),
    MetricSpec("crucible_sandbox_wait_seconds", "histogram",
               "time an evaluation waited for a ready sandbox", ("language", "warm"),
               SECONDS_SLOW),
    # ingress
    MetricSpec("crucible_http_requests", "counter", "HTTP requests answered",
               ("method", "route", "code")),
    MetricSpec("crucible_auth_failures", "counter", "requests refused for credentials",
               ("reason",)),
    MetricSpec("crucible_rate_limited", "counter", "submissions refused by the rate limit"),
    MetricSpec("crucible_flagged_submissions", "counter",
               "submissions static analysis flagged (advisory)", ("language",)),
)}  # fmt: skip


class Metrics:
    """This process's metric objects, created on first use (Ray must be initialised)."""

    def __init__(self) -> None:
        from ray.util import metrics

        kinds = {"counter": metrics.Counter, "gauge": metrics.Gauge}
        self._objects = {}
        for spec in SPECS.values():
            if spec.kind == "histogram":
                self._objects[spec.name] = metrics.Histogram(
                    spec.name, spec.description, list(spec.boundaries), spec.tags
                )
            else:
                self._objects[spec.name] = kinds[spec.kind](spec.name, spec.description, spec.tags)

    def inc(self, name: str, value: float = 1.0, **tags: str) -> None:
        self._record(name, "inc", value, tags)

    def set(self, name: str, value: float, **tags: str) -> None:
        self._record(name, "set", value, tags)

    def observe(self, name: str, value: float, **tags: str) -> None:
        self._record(name, "observe", value, tags)

    def _record(self, name: str, how: str, value: float, tags: dict[str, str]) -> None:
        checked = _check(name, tags)  # a wrong tag is a bug: raised (the tests see it)
        try:
            getattr(self._objects[name], how)(value, tags=checked)
        except Exception:  # the pipeline failing must never fail a request or a result
            log.exception("recording %s failed", name)


def _check(name: str, tags: dict[str, str]) -> dict[str, str]:
    if set(tags) != set(SPECS[name].tags):
        raise ValueError(f"{name} takes tags {SPECS[name].tags}, got {tuple(tags)}")
    return {k: str(v) for k, v in tags.items()}


_lock = threading.Lock()
_instance: Metrics | None = None


def metrics() -> Metrics:
    """This process's metrics (created once; the lock is taken only until then)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = Metrics()
    return _instance
