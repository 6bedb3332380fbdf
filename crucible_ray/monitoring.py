"""Read crucible's metrics straight from the Ray nodes' metrics ports, without Prometheus
(``crucible-ray cluster metrics``, and the tests). Series are summed across nodes and
processes; Ray's own labels (node, worker, session...) are dropped."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import httpx
from prometheus_client.parser import text_string_to_metric_families

PREFIX = "ray_crucible_"
RAY_LABELS = {"Component", "NodeAddress", "SessionName", "Version", "WorkerId", "JobId"}
Series = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted crucible labels)


class Row(NamedTuple):
    """One series as ``crucible-ray cluster metrics`` prints it."""

    name: str
    labels: dict[str, str]
    value: float


def scrape(target: str, timeout_s: float = 5.0) -> dict[Series, float]:
    """The crucible samples one node exports (``host:port``), summed over its processes."""
    text = httpx.get(f"http://{target}/metrics", timeout=timeout_s).text
    totals: dict[Series, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(PREFIX):
                continue
            own = {k: v for k, v in sample.labels.items() if _is_crucible_label(k)}
            labels = tuple(sorted(own.items()))
            totals[(sample.name, labels)] += sample.value
    return dict(totals)


def _is_crucible_label(name: str) -> bool:
    return name not in RAY_LABELS and not name.startswith("otel_")


def scrape_all(targets: list[str]) -> dict[Series, float]:
    totals: dict[Series, float] = defaultdict(float)
    for target in targets:
        for series, value in scrape(target).items():
            totals[series] += value
    return dict(totals)


def discovered_targets(session_dir: Path) -> list[str]:
    """Every node's metrics endpoint, from the service-discovery file Ray's head writes."""
    groups = json.loads((session_dir / "prom_metrics_service_discovery.json").read_text())
    return [target for group in groups for target in group["targets"]]


def rows(totals: dict[Series, float], contains: str = "") -> list[Row]:
    """The series whose name contains ``contains``, ordered by name, then labels. The label
    tuples are compared, never the dicts built from them (dicts do not support <); bucket bounds
    compare as numbers, so ``le="2.5"`` comes before ``le="10.0"``."""
    chosen = [(name, tags, v) for (name, tags), v in totals.items() if contains in name]
    chosen.sort(key=lambda row: (row[0], tuple((k, _label_key(k, x)) for k, x in row[1])))
    return [Row(name, dict(tags), v) for name, tags, v in chosen]


def _label_key(name: str, label: str) -> tuple[float, str]:
    if name == "le":
        try:
            return (float(label), label)  # "+Inf" parses as infinity: last
        except ValueError:
            pass
    return (0.0, label)


def value(totals: dict[Series, float], name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, tags), v in totals.items() if n == name and wanted <= set(tags))
