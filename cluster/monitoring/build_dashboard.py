"""Writes grafana/dashboards/crucible.json from the panel list below.

    .venv/bin/python cluster/monitoring/build_dashboard.py

Generated, not hand-edited, so every query names a series crucible_ray/metrics.py defines
(the test suite checks that, and that the committed JSON is up to date).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards" / "crucible.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def q(name: str) -> str:
    return f"ray_{name}"


def quantile(p: float, name: str, by: str = "") -> str:
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({p}, sum by ({group}) (rate({q(name)}_bucket[5m])))"


# (title, unit, [(legend, expression)]) - one row of two panels at a time
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Evaluations finished by status", "ops",
     [("{{status}}", f"sum by (status) (rate({q('crucible_evaluations_total')}[1m]))")]),
    ("Admitted and rejected", "ops",
     [("admitted", f"sum(rate({q('crucible_admitted_total')}[1m]))"),
      ("rejected {{reason}}", f"sum by (reason) (rate({q('crucible_rejected_total')}[1m]))")]),
    ("Program duration", "s",
     [("p50", quantile(0.5, "crucible_evaluation_duration_seconds")),
      ("p95", quantile(0.95, "crucible_evaluation_duration_seconds"))]),
    ("Admission to result (queueing included)", "s",
     [("p50", quantile(0.5, "crucible_evaluation_latency_seconds")),
      ("p95", quantile(0.95, "crucible_evaluation_latency_seconds"))]),
    ("Queue depth against capacity", "short",
     [("queued", f"max({q('crucible_queue_depth')})"),
      ("running", f"max({q('crucible_running')})"),
      ("admission limit", f"max({q('crucible_admission_limit')})")]),
    ("Executor actors", "short",
     [("{{state}}", f"max by (state) ({q('crucible_executors')})"),
      ("slots ready", f"max({q('crucible_slots')})")]),
    ("Sandboxes running (all executor nodes)", "short",
     [("running", f"sum({q('crucible_sandboxes_running')})")]),
    ("Sandbox start", "s",
     [("boot p95 {{language}}", quantile(0.95, "crucible_sandbox_boot_seconds", "language")),
      ("wait p95 warm={{warm}}", quantile(0.95, "crucible_sandbox_wait_seconds", "warm"))]),
    ("Timeouts and OOM kills", "ops",
     [("timeouts {{language}}", f"sum by (language) (rate({q('crucible_timeouts_total')}[5m]))"),
      ("OOM kills {{language}}",
       f"sum by (language) (rate({q('crucible_oom_kills_total')}[5m]))")]),
    ("Executors lost, retries, store write failures", "short",
     [("lost", f"sum(increase({q('crucible_executors_lost_total')}[10m]))"),
      ("retried", f"sum(increase({q('crucible_retries_total')}[10m]))"),
      ("store writes failed",
       f"sum(increase({q('crucible_store_write_failures_total')}[10m]))")]),
    ("Security signals", "ops",
     [("permission denials {{language}}",
       f"sum by (language) (rate({q('crucible_permission_denials_total')}[5m]))"),
      ("flagged submissions {{language}}",
       f"sum by (language) (rate({q('crucible_flagged_submissions_total')}[5m]))"),
      ("auth failures {{reason}}",
       f"sum by (reason) (rate({q('crucible_auth_failures_total')}[5m]))"),
      ("rate limited", f"sum(rate({q('crucible_rate_limited_total')}[5m]))")]),
    ("HTTP requests by code", "reqps",
     [("{{code}}", f"sum by (code) (rate({q('crucible_http_requests_total')}[1m]))")]),
    ("Runtime security events by rule (gVisor trace points)", "ops",
     [("{{rule}}", f"sum by (rule) (rate({q('crucible_security_events_total')}[5m]))"),
      ("trace incomplete {{language}}",
       f"sum by (language) (rate({q('crucible_security_trace_incomplete_total')}[5m]))")]),
    ("Escape attempts and network activity by language", "short",
     [("{{alert}} {{language}}",
       f"sum by (alert, language) (increase({q('crucible_security_events_total')}"
       "{alert!=\"none\"}[10m]))")]),
]  # fmt: skip


def panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (legend, expr) in enumerate(targets)
        ],
    }


def dashboard() -> dict:
    return {
        "uid": "crucible-ray",
        "title": "crucible-ray",
        "tags": ["crucible-ray"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus", "label": "Prometheus"}]},
        "panels": [panel(i, *spec) for i, spec in enumerate(PANELS)],
    }  # fmt: skip


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
