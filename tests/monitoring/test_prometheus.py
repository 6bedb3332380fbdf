"""The shipped monitoring configuration: promtool accepts it, the alert rules fire as meant,
the Grafana dashboard is current and names only real series, and a real Prometheus server
scraping the running cluster through Ray's service discovery sees crucible's series."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from crucible_ray.metrics import SPECS
from tests.conftest import IN_CI, TEST_PORT_OFFSET, wait_for

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "cluster" / "monitoring"
PROMETHEUS_PORT = 18890 + TEST_PORT_OFFSET


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (apt-get install prometheus)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return path


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([need("promtool"), *args], cwd=MONITORING, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_promtool_accepts_the_config_and_rules():
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml")):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_fire_on_the_series_they_watch():
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def exported_names() -> set[str]:
    names = set()
    for spec in SPECS.values():
        if spec.kind == "histogram":
            names |= {f"{spec.exported}_{part}" for part in ("bucket", "sum", "count")}
        else:
            names.add(spec.exported)
    return names


def test_dashboards_and_alerts_name_only_defined_series():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", MONITORING / "build_dashboard.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)  # type: ignore[union-attr]
    committed = MONITORING / "grafana" / "dashboards" / "crucible.json"
    assert committed.read_text() == build.render(), "run cluster/monitoring/build_dashboard.py"
    known = exported_names()
    for source in (committed, MONITORING / "alerts.yml"):
        used = set(re.findall(r"ray_crucible_[a-z_]+", source.read_text()))
        assert used and used <= known, f"{source.name}: unknown series {used - known}"
    dashboard_series = set(re.findall(r"ray_crucible_[a-z_]+", committed.read_text()))
    unplotted = {s.exported for s in SPECS.values()} - {
        re.sub(r"_(bucket|sum|count)$", "", n) for n in dashboard_series
    }
    assert not unplotted, f"metrics without a Grafana panel: {unplotted}"


@pytest.fixture
def prometheus(cluster, service) -> Iterator[str]:
    """A real Prometheus server, configured by the shipped prometheus.yml pointed at this
    cluster's service-discovery file."""
    import ray

    binary = need("prometheus")
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    discovery = session / "prom_metrics_service_discovery.json"
    assert wait_for(discovery.exists, timeout_s=60), "Ray wrote no service-discovery file"
    work = Path(tempfile.mkdtemp(prefix="crucible-prometheus-"))
    config = (MONITORING / "prometheus.yml").read_text()
    config = config.replace("/tmp/ray/prom_metrics_service_discovery.json", str(discovery))
    config = config.replace("scrape_interval: 10s", "scrape_interval: 2s")
    (work / "prometheus.yml").write_text(config)
    shutil.copy(MONITORING / "alerts.yml", work / "alerts.yml")
    server = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"],
        stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{PROMETHEUS_PORT}"
    try:
        assert wait_for(lambda: _ready(url), timeout_s=60), (work / "prometheus.log").read_text()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_a_real_prometheus_scrapes_every_node(cluster, as_user, prometheus):
    client = as_user()
    for i in range(3):
        assert client.post("/api/eval?wait=true", json={"code": f"print({i})"}).status_code == 200
    live_nodes = [n for n in cluster.nodes if not n.get("stopped")]

    def targets_up() -> bool:
        return len(query(prometheus, 'up{job="ray"} == 1')) >= len(live_nodes)

    assert wait_for(targets_up, timeout_s=90), query(prometheus, "up")

    def evaluations_seen() -> bool:
        found = query(prometheus, 'sum(ray_crucible_evaluations_total{status="succeeded"})')
        return bool(found) and float(found[0]["value"][1]) >= 3

    assert wait_for(evaluations_seen, timeout_s=120)
    # Sandbox series come from both executor nodes' endpoints, the limit from the dispatcher.
    per_node = "count by (instance) (ray_crucible_sandbox_boot_seconds_count)"
    assert wait_for(lambda: len(query(prometheus, per_node)) >= 2, timeout_s=60), (
        query(prometheus, per_node),
        query(prometheus, "up"),
    )
    assert query(prometheus, "max(ray_crucible_admission_limit)")[0]["value"][1] == "16"

    shipped = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]

    def rules_evaluated() -> bool:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        (crucible,) = [g for g in groups if g["name"] == "crucible"]
        return len(crucible["rules"]) == len(shipped) and all(
            r["health"] == "ok" for r in crucible["rules"]
        )

    assert wait_for(rules_evaluated, timeout_s=60)
