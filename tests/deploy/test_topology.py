"""The labels and resources in the manifests and the launcher config are the very ones the code
schedules executors on (crucible_ray/topology.py), as Ray's own autoscaler reads them."""

from __future__ import annotations

import copy
import importlib
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.autoscaler._private.util import prepare_config, validate_config

from crucible_ray.topology import (
    EXECUTOR_ROLE,
    ROLE_LABEL,
    SLOT_RESOURCE,
    control_plane_options,
    executor_actor_options,
    executor_node_labels,
)
from tests.deploy.manifests import AWS, aws_cluster, groups, rayservice, serve_config

EXECUTOR_SELECTOR = executor_actor_options(1)["label_selector"]


def _node_types_from_rayservice(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Ray 2.60's KubeRay autoscaler makes of the cluster: node types with the labels and
    resources it matches pending executor actors against (its own code, not a re-reading)."""
    cr = {"metadata": {"name": "crucible", "namespace": "crucible"},
          "spec": service["spec"]["rayClusterConfig"]}  # fmt: skip
    return _derive_autoscaling_config_from_ray_cr(cr)["available_node_types"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Ray's label selector semantics for the forms the code uses: "v" and "!v"."""
    for key, want in selector.items():
        have = labels.get(key)
        negated = want.startswith("!")
        if (have == want.removeprefix("!")) == negated:
            return False
    return True


def executor_problems(node_types: dict[str, dict[str, Any]]) -> list[str]:
    """Why executor actors could not land on the executor type, or could land elsewhere."""
    problems = []
    executors = [n for n, t in node_types.items() if _selects(EXECUTOR_SELECTOR, t["labels"])]
    if len(executors) != 1:
        return [f"node types the executor selector matches: {executors}"]
    (name,) = executors
    labels, resources = node_types[name]["labels"], node_types[name]["resources"]
    if labels != executor_node_labels():
        problems.append(f"{name} labels {labels} != {executor_node_labels()}")
    if resources.get(SLOT_RESOURCE, 0) < 1:
        problems.append(f"{name} has no {SLOT_RESOURCE} (resources {resources})")
    if resources.get("CPU", 0) != 0:
        problems.append(f"{name} offers CPU to Ray tasks: {resources['CPU']}")
    for other, spec in node_types.items():
        role = spec["labels"].get(ROLE_LABEL)
        if other != name and (SLOT_RESOURCE in spec["resources"] or role in (None, EXECUTOR_ROLE)):
            problems.append(f"{other} must carry a non-executor role and no {SLOT_RESOURCE}")
    return problems


def test_kuberay_executor_group_is_what_the_code_schedules_on() -> None:
    node_types = _node_types_from_rayservice(rayservice())
    assert set(node_types) == {"headgroup", "ingress", "executor"}
    assert executor_problems(node_types) == []


def test_kuberay_pods_carry_the_group_role() -> None:
    """NetworkPolicies and the admission policy select pods by the same role label."""
    for group in groups(rayservice()).values():
        assert group["template"]["metadata"]["labels"][ROLE_LABEL] == group["labels"][ROLE_LABEL]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda g: g["executor"]["labels"].update({ROLE_LABEL: "executors"}),
        lambda g: g["executor"].update({"resources": {"sandbox_slot": "8"}}),
        lambda g: g["ingress"]["labels"].update(executor_node_labels()),
        lambda g: g["headgroup"].update({"resources": {SLOT_RESOURCE: "2"}}),
        lambda g: g["executor"]["rayStartParams"].pop("num-cpus"),
    ],
)
def test_a_wrong_label_or_resource_is_caught(mutate: Any) -> None:
    service = copy.deepcopy(rayservice())
    mutate(groups(service))
    assert executor_problems(_node_types_from_rayservice(service)) != []


def test_aws_config_matches_rays_schema_and_the_code() -> None:
    config = aws_cluster()
    # As `ray up` does: AWS defaults filled in, then ray/autoscaler/ray-schema.json.
    validate_config(prepare_config(copy.deepcopy(config)))
    node_types = config["available_node_types"]
    assert executor_problems(node_types) == []
    executor = node_types["executor"]
    assert "IamInstanceProfile" not in executor["node_config"], "executors hold no credentials"
    assert executor["node_config"]["SubnetIds"] != node_types["head"]["node_config"]["SubnetIds"]
    broken = copy.deepcopy(node_types)
    broken["executor"]["labels"] = {"role": "executor"}
    assert executor_problems(broken) != []
    misspelt = copy.deepcopy(config)
    misspelt["available_node_types"]["executor"]["label"] = executor_node_labels()
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(misspelt))


def _serve_apps() -> dict[str, dict[str, Any]]:
    return {"kuberay": serve_config(rayservice()),
            "aws": yaml.safe_load((AWS / "serve.yaml").read_text())}  # fmt: skip


@pytest.mark.parametrize("where", ["kuberay", "aws"])
def test_serve_app_builds_from_the_package(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import path names a real builder, and the config's args are valid Settings."""
    monkeypatch.setenv("CRUCIBLE_JWT_SECRET", "k3Y-" + "abcdefghij0123456789ABCDEFGHIJ")
    monkeypatch.setenv("CRUCIBLE_DATABASE_URL", "postgresql+psycopg://u:p@db:5432/crucible")
    # Built as Serve builds it, but away from the cluster the other tests share: its dispatcher
    # must not be replaced by one pointed at this config's (unreachable) database.
    monkeypatch.setattr("ray.is_initialized", lambda: False)
    (app,) = _serve_apps()[where]["applications"]
    module, _, attr = app["import_path"].partition(":")
    builder = getattr(importlib.import_module(module), attr)
    application = builder(app["args"])
    public = application._bound_deployment.init_args[0]
    assert "u:p@db" not in str(public)  # the secrets stay in the pods' environment
    assert public["dispatcher"]["store_state_dir"] == "/var/lib/crucible"
    assert public["dispatcher"]["store_needs_database_url"] is True  # never one node's SQLite
    deployments = {d["name"] for d in app["deployments"]}
    assert deployments == {application._bound_deployment.name}


def test_serve_app_refuses_single_machine_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from crucible_ray.api.serve_app import build

    monkeypatch.delenv("CRUCIBLE_JWT_SECRET", raising=False)
    monkeypatch.setenv("CRUCIBLE_DATABASE_URL", "postgresql+psycopg://u:p@db:5432/crucible")
    with pytest.raises(ValueError, match="CRUCIBLE_JWT_SECRET"):
        build({})


@pytest.mark.parametrize("where", ["kuberay", "aws"])
def test_ingress_replicas_land_on_a_control_plane_node(where: str) -> None:
    """The config's selector replaces the code's; it must still keep replicas (and so the HTTP
    proxies) off executor nodes, and name a node group that exists."""
    (app,) = _serve_apps()[where]["applications"]
    (ingress,) = app["deployments"]
    selector = ingress["ray_actor_options"]["label_selector"]
    if where == "kuberay":
        node_labels = [t["labels"] for t in _node_types_from_rayservice(rayservice()).values()]
    else:
        node_labels = [t["labels"] for t in aws_cluster()["available_node_types"].values()]
    matching = [labels for labels in node_labels if _selects(selector, labels)]
    assert matching, f"no node group matches {selector}"
    assert all(_selects(control_plane_options()["label_selector"], m) for m in matching)


def test_the_two_serve_configs_agree_but_for_capacity() -> None:
    kuberay, aws = _serve_apps()["kuberay"], _serve_apps()["aws"]
    for config in (kuberay, aws):
        config["applications"][0]["args"]["dispatcher"].pop("max_actors")
    assert kuberay == aws


def _capacity(slots_per_node: int, max_nodes: int, args: dict[str, Any]) -> tuple[int, int]:
    dispatcher = args["dispatcher"]
    return dispatcher["max_actors"] * dispatcher["slots_per_actor"], slots_per_node * max_nodes


def test_dispatcher_limits_fit_the_executor_pool() -> None:
    """More actors than the pool can hold would stay pending forever; far fewer would leave
    the pool idle. Each node's slots must divide into whole actors."""
    executor = groups(rayservice())["executor"]
    (app,) = serve_config(rayservice())["applications"]
    slots = int(executor["resources"][SLOT_RESOURCE])
    assert slots % app["args"]["dispatcher"]["slots_per_actor"] == 0
    wanted, available = _capacity(slots, executor["maxReplicas"], app["args"])
    assert wanted == available
    aws_executor = aws_cluster()["available_node_types"]["executor"]
    (aws_app,) = _serve_apps()["aws"]["applications"]
    slots = aws_executor["resources"][SLOT_RESOURCE]
    wanted, available = _capacity(slots, aws_executor["max_workers"], aws_app["args"])
    assert wanted == available
