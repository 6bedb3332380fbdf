"""Progressive delivery (cluster/progressive): Flagger's Canary and MetricTemplates against their
schemas, wired to the release Service and the two tracks, querying only series the code
exports (cluster/monitoring/alerts.yml too), and a green track as safe as the blue one."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml

from crucible_ray.metrics import SPECS
from tests.deploy.flagger_schema import CANARY_SCHEMA, METRIC_TEMPLATE_SCHEMA
from tests.deploy.kuberay_schema import RAYSERVICE_SCHEMA
from tests.deploy.manifests import (
    KUBERAY,
    PROGRESSIVE,
    REPO,
    green_rayservice,
    groups,
    kuberay_docs,
    load_all,
    one,
    progressive_docs,
    rayservice,
    serve_config,
)
from tests.deploy.test_schemas import K8S_VERSIONS, _pod_template_validator
from tests.deploy.test_security import restricted_problems
from tests.deploy.test_topology import _node_types_from_rayservice, executor_problems

TRACK = "crucible.dev/track"
ALERTS = REPO / "cluster" / "monitoring" / "alerts.yml"


def canary() -> dict[str, Any]:
    return one(progressive_docs(), "Canary")


def templates() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in progressive_docs() if d["kind"] == "MetricTemplate"}


def release_service() -> dict[str, Any]:
    return one(progressive_docs(), "Service")


# --- schemas -------------------------------------------------------------------------------


def test_flagger_objects_match_their_schemas() -> None:
    jsonschema.validate(canary(), CANARY_SCHEMA)
    assert len(templates()) == 3
    for template in templates().values():
        jsonschema.validate(template, METRIC_TEMPLATE_SCHEMA)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["spec"]["analysis"]["metrics"][0].update({"templateRefs": {"name": "x"}}),
        lambda c: c["spec"].update({"provider": "gatewayapi"}),
        lambda c: c["spec"]["targetRef"].update({"kind": "RayService"}),
        lambda c: c["spec"]["analysis"].update({"interval": "1 minute"}),
        lambda c: c["spec"]["service"].update({"gatewayRef": c["spec"]["service"]["gatewayRefs"]}),
        lambda c: c.update({"apiVersion": "flagger.app/v1alpha3"}),
    ],
)
def test_the_canary_schema_refuses_mistakes(mutate: Any) -> None:
    broken = copy.deepcopy(canary())
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, CANARY_SCHEMA)


def test_the_metric_template_schema_refuses_mistakes() -> None:
    for mutate in (lambda s: s["provider"].update({"type": "prom"}),
                   lambda s: s.update({"queries": s.pop("query")})):  # fmt: skip
        broken = copy.deepcopy(next(iter(templates().values())))
        mutate(broken["spec"])
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, METRIC_TEMPLATE_SCHEMA)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_release_service_validates_strictly(version: str) -> None:
    kubernetes_validate.validate(release_service(), version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_green_track_matches_the_rayservice_schemas(version: str) -> None:
    jsonschema.validate(green_rayservice(), RAYSERVICE_SCHEMA)
    validator = _pod_template_validator(version)
    for name, group in groups(green_rayservice()).items():
        assert not list(validator.iter_errors(group["template"])), name


def test_every_manifest_is_in_the_kustomization() -> None:
    listed = {d["kind"] + "/" + d["metadata"]["name"] for d in progressive_docs()}
    on_disk = {d["kind"] + "/" + d["metadata"]["name"] for path in PROGRESSIVE.glob("*.yaml")
               if path.name != "kustomization.yaml" for d in load_all(path)}  # fmt: skip
    assert listed == on_disk


# --- series: only what the code exports ----------------------------------------------------


def exported_names() -> set[str]:
    """Every series name crucible_ray/metrics.py makes Prometheus see."""
    names = set()
    for spec in SPECS.values():
        if spec.kind == "histogram":
            names |= {f"{spec.exported}_{part}" for part in ("bucket", "sum", "count")}
        else:
            names.add(spec.exported)
    return names


def render(query: str, canary_doc: dict[str, Any], metric: dict[str, Any]) -> str:
    """The query as Flagger sends it: its Go template with the model's functions (name,
    namespace, target, service, interval, variables.KEY); an unknown key is an error, as with
    Flagger's missingkey=error."""
    spec, target = canary_doc["spec"], canary_doc["spec"]["targetRef"]["name"]
    model = {
        "name": canary_doc["metadata"]["name"],
        "namespace": canary_doc["metadata"]["namespace"],
        "target": target,
        "service": spec["service"].get("name", target),
        "interval": metric.get("interval", spec["analysis"].get("interval", "1m")),
    }
    variables = metric.get("templateVariables", {})

    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key.startswith("variables."):
            return variables[key.removeprefix("variables.")]
        return model[key]

    return re.sub(r"\{\{(.*?)\}\}", value, query)


def canary_queries(canary_doc: dict[str, Any], temps: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: render(temps[m["templateRef"]["name"]]["spec"]["query"], canary_doc, m)
            for m in canary_doc["spec"]["analysis"]["metrics"]}  # fmt: skip


def alert_queries() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r["alert"]: r["expr"] for group in rules for r in group["rules"]}


def selectors(query: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(promql_parser.parse(query),
                       lambda n: found.append(n) if isinstance(n, promql_parser.VectorSelector)
                       else None)  # fmt: skip
    return found


def _name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    equal = promql_parser.MatchOp.Equal
    return next((m.value for m in selector.matchers.matchers
                 if m.name == "__name__" and m.op == equal), None)  # fmt: skip


def series_problems(queries: dict[str, str]) -> list[str]:
    """Each query parses as PromQL, and every series it selects is one the code exports (with
    Prometheus's suffixes: _total for counters, _bucket/_sum/_count for histograms)."""
    known, problems = exported_names(), []
    for where, query in queries.items():
        try:
            found = selectors(query)
        except ValueError as exc:
            problems.append(f"{where}: not PromQL: {exc}")
            continue
        if not found:
            problems.append(f"{where}: selects no series")
        for selector in found:
            if _name(selector) not in known:
                problems.append(f"{where}: {_name(selector) or selector} is not exported")
    return problems


def test_canary_checks_and_alerts_query_only_exported_series() -> None:
    queries = canary_queries(canary(), templates())
    assert len(queries) == 3
    assert series_problems(queries) == []
    assert series_problems(alert_queries()) == []


@pytest.mark.parametrize(
    "query",
    [
        "sum(rate(ray_crucible_http_request_total[5m]))",  # misspelt
        "sum(rate(crucible_http_requests_total[5m]))",  # no ray_ prefix
        "sum(rate(ray_crucible_http_requests[5m]))",  # a counter without _total
        "histogram_quantile(0.9, rate(ray_crucible_evaluation_latency_seconds[5m]))",
        "ray_crucible_queue_depth_total",  # a gauge with _total
        '{__name__=~"ray_crucible_.*"}',  # names nothing checkable
        "sum(rate(ray_crucible_evaluations_total[5m])",  # does not parse
    ],
)
def test_the_series_check_catches_a_wrong_name(query: str) -> None:
    assert series_problems({"broken": query}) != []


def test_canary_checks_select_their_track_in_their_namespace() -> None:
    variables = canary()["spec"]["analysis"]["metrics"][0]["templateVariables"]
    for name, query in canary_queries(canary(), templates()).items():
        tracks = set()
        for selector in selectors(query):
            labels = {m.name: m.value for m in selector.matchers.matchers}
            assert labels.get("namespace") == canary()["metadata"]["namespace"], name
            tracks.add(labels.get("track"))
        assert variables["track"] in tracks, f"{name} does not look at the canary"
        assert tracks <= {variables["track"], variables["primary_track"]}, name
    broken = copy.deepcopy(templates())
    query = broken["crucible-http-error-rate"]["spec"]["query"]
    broken["crucible-http-error-rate"]["spec"]["query"] = query.replace("track=", "role=")
    query = canary_queries(canary(), broken)["http-error-rate"]
    assert {m.name for s in selectors(query) for m in s.matchers.matchers} >= {"namespace"}
    assert "track" not in {m.name for s in selectors(query) for m in s.matchers.matchers}


def test_the_podmonitor_labels_series_with_the_track() -> None:
    monitor = one(kuberay_docs(), "PodMonitor")
    relabelings = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]
    source = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", TRACK)
    assert {"sourceLabels": [source], "targetLabel": "track"} in relabelings


# --- wiring: release Service, tracks, Canary -----------------------------------------------


def _track_of(service: dict[str, Any]) -> str | None:
    tracks = {g["template"]["metadata"]["labels"].get(TRACK) for g in groups(service).values()}
    return tracks.pop() if len(tracks) == 1 else None


def wiring_problems(release: dict[str, Any], canary_doc: dict[str, Any],
                    tracks: list[dict[str, Any]]) -> list[str]:  # fmt: skip
    problems = []
    by_track = {_track_of(s): s for s in tracks}
    if None in by_track or len(by_track) != len(tracks) or len(tracks) != 2:
        problems.append(f"each RayService needs its own single track: {sorted(map(str, by_track))}")
    selector = release["spec"]["selector"]
    selected = [(t, name) for t, s in by_track.items() for name, g in groups(s).items()
                if selector.items() <= g["template"]["metadata"]["labels"].items()]  # fmt: skip
    if [name for _, name in selected] != ["ingress"]:
        problems.append(f"the release Service selects {selected}, want one track's ingress pods")
    track = selector.get(TRACK)
    spec = canary_doc["spec"]
    target = {"apiVersion": "v1", "kind": "Service", "name": release["metadata"]["name"]}
    if spec["targetRef"] != target:
        problems.append(f"targetRef {spec['targetRef']}, want {target}")
    if spec["service"].get("name", target["name"]) != target["name"]:
        problems.append("service.name differs from the target: the route would miss its Services")
    if spec.get("provider") != "gatewayapi:v1" or not spec["service"].get("gatewayRefs"):
        problems.append("Flagger's Service targets need a router: the Gateway API here")
    if spec["service"]["port"] != release["spec"]["ports"][0]["port"]:
        problems.append("the route's port is not the release Service's")
    for metric in spec["analysis"]["metrics"]:
        variables = metric.get("templateVariables", {})
        if variables.get("track") != track:
            problems.append(f"{metric['name']} checks {variables.get('track')}, not {track}")
        if variables.get("primary_track") not in set(by_track) - {track}:
            problems.append(f"{metric['name']}: primary_track is not the other track")
        if "thresholdRange" not in metric or "interval" not in metric:
            problems.append(f"{metric['name']} has no threshold or interval")
    return problems


def test_the_canary_the_service_and_the_tracks_agree() -> None:
    assert wiring_problems(release_service(), canary(), [rayservice(), green_rayservice()]) == []
    assert {m["templateRef"]["name"] for m in canary()["spec"]["analysis"]["metrics"]} == set(
        templates()
    ), "every template is used, every reference exists"


def _retrack(service: dict[str, Any], track: str) -> dict[str, Any]:
    service = copy.deepcopy(service)
    for group in groups(service).values():
        group["template"]["metadata"]["labels"][TRACK] = track
    return service


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s, c, t: s["spec"]["selector"].update({TRACK: "green"}),  # Canary not updated
        lambda s, c, t: s["spec"]["selector"].pop("crucible.dev/role"),  # selects executors too
        lambda s, c, t: s["spec"]["selector"].pop(TRACK),  # both tracks at once
        lambda s, c, t: c["spec"]["service"].update({"name": "crucible"}),
        lambda s, c, t: c["spec"]["targetRef"].update({"name": "crucible-serve-svc"}),
        lambda s, c, t: c["spec"].update({"provider": "kubernetes"}),
        lambda s, c, t: c["spec"]["analysis"]["metrics"][2]["templateVariables"].update(
            {"primary_track": "blue"}
        ),
        lambda s, c, t: t.__setitem__(1, _retrack(t[1], "blue")),  # two blue tracks
    ],
)
def test_the_wiring_check_catches_a_mismatch(mutate: Any) -> None:
    release, canary_doc = copy.deepcopy(release_service()), copy.deepcopy(canary())
    tracks = [rayservice(), green_rayservice()]
    mutate(release, canary_doc, tracks)
    assert wiring_problems(release, canary_doc, tracks) != []


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def test_the_route_outlasts_serves_request_timeout() -> None:
    for service in (rayservice(), green_rayservice()):
        limit = serve_config(service)["http_options"]["request_timeout_s"]
        assert _seconds(canary()["spec"]["service"]["timeout"]) > limit


# --- the green track is as safe as the blue one ---------------------------------------------

SAFETY = ("serviceAccountName", "automountServiceAccountToken", "securityContext", "volumes",
          "nodeSelector", "tolerations", "affinity", "hostname")  # fmt: skip


def _safety(service: dict[str, Any]) -> dict[str, Any]:
    """What decides what a track's pods may do and reach, group by group."""
    out: dict[str, Any] = {"auth": service["spec"]["rayClusterConfig"]["authOptions"]}
    for name, group in groups(service).items():
        spec = group["template"]["spec"]
        out[name] = {k: spec.get(k) for k in SAFETY}
        out[name]["containers"] = [
            {k: c.get(k) for k in ("securityContext", "envFrom", "volumeMounts")}
            for c in spec["containers"]
        ]
        labels = dict(group["template"]["metadata"]["labels"])
        labels.pop(TRACK)
        out[name]["labels"] = (labels, group["labels"], group.get("resources"))
    return out


def test_the_green_track_is_as_safe_as_blue() -> None:
    green = green_rayservice()
    assert _safety(green) == _safety(rayservice())
    pods = {name: g["template"] for name, g in groups(green).items()}
    assert restricted_problems(pods["headgroup"]) == restricted_problems(pods["ingress"]) == []
    assert restricted_problems(pods["executor"]) == ["mounts a host path"]
    assert executor_problems(_node_types_from_rayservice(green)) == []
    (app,) = serve_config(green)["applications"]
    (blue_app,) = serve_config(rayservice())["applications"]
    assert app["import_path"] == blue_app["import_path"]
    assert green["metadata"]["namespace"] == rayservice()["metadata"]["namespace"]
    weaker = _retrack(green, "green")
    groups(weaker)["executor"]["template"]["spec"]["automountServiceAccountToken"] = True
    assert _safety(weaker) != _safety(rayservice())


def test_kuberay_and_progressive_share_one_namespace() -> None:
    namespace = one(load_all(KUBERAY / "namespace.yaml"), "Namespace")["metadata"]["name"]
    assert {d["metadata"]["namespace"] for d in progressive_docs()} == {namespace}
