"""The API server's audit policy (cluster/kuberay/audit-policy.yaml): valid against the audit
API's schema, and, evaluated the way the API server evaluates it (first matching rule wins),
logging what the executor namespace needs at the level it needs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.audit_schema import AUDIT_POLICY_SCHEMA, LEVELS
from tests.deploy.manifests import AUDIT_POLICY, KUBERAY, one

NAMESPACE = one(yaml.safe_load_all((KUBERAY / "namespace.yaml").read_text()), "Namespace")
NAMESPACE_NAME = NAMESPACE["metadata"]["name"]
WRITES = ("create", "update", "patch", "delete", "deletecollection")
READS = ("get", "list", "watch")


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str = ""  # "pods", or "pods/exec" for a subresource
    namespace: str = NAMESPACE_NAME
    group: str = ""
    user: str = "alice"
    groups: tuple[str, ...] = ("system:authenticated",)
    path: str = ""  # a non-resource URL instead of a resource


def policy() -> dict[str, Any]:
    return yaml.safe_load(AUDIT_POLICY.read_text())


def _resource_matches(wanted: str, resource: str) -> bool:
    """The API server's rules: "pods" is not "pods/exec"; "*" is any resource, "pods/*" any
    subresource of pods, "*/exec" that subresource of any resource."""
    base, _, sub = resource.partition("/")
    return wanted in ("*", resource) or (sub != "" and wanted in (f"{base}/*", f"*/{sub}"))


def _rule_matches(rule: dict[str, Any], request: Request) -> bool:
    if rule.get("users") and request.user not in rule["users"]:
        return False
    if rule.get("userGroups") and not set(request.groups) & set(rule["userGroups"]):
        return False
    if rule.get("verbs") and request.verb not in rule["verbs"]:
        return False
    if request.path:  # a non-resource request matches only rules about URLs, or about nothing
        urls = rule.get("nonResourceURLs")
        if not urls:
            return not rule.get("resources") and not rule.get("namespaces")
        return any(request.path == u or (u.endswith("*") and request.path.startswith(u[:-1]))
                   for u in urls)  # fmt: skip
    if rule.get("nonResourceURLs"):
        return False
    if rule.get("namespaces") and request.namespace not in rule["namespaces"]:
        return False
    if "resources" in rule:
        return any(
            gr.get("group", "") == request.group
            and (not gr.get("resources")
                 or any(_resource_matches(r, request.resource) for r in gr["resources"]))
            for gr in rule["resources"]
        )  # fmt: skip
    return True


def level(doc: dict[str, Any], request: Request) -> str:
    """The level the API server logs a request at: the first matching rule's; None if none."""
    return next((r["level"] for r in doc["rules"] if _rule_matches(r, request)), "None")


REQUIRED = [  # (resource, verbs) the namespace's requests must be logged whole for
    ("pods", WRITES),
    ("pods/eviction", ("create",)),
    ("pods/exec", ("create", "get")),
    ("pods/attach", ("create", "get")),
    ("pods/portforward", ("create", "get")),
    ("pods/ephemeralcontainers", ("update", "patch")),
    ("secrets", WRITES),
]


def policy_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    if "RequestReceived" not in doc.get("omitStages", []):
        problems.append("RequestReceived is not omitted")
    for resource, verbs in REQUIRED:
        for verb in verbs:
            for user, groups in (("alice", ("system:authenticated",)),
                                 ("system:serviceaccount:crucible:crucible-head",
                                  ("system:serviceaccounts",))):  # fmt: skip
                got = level(doc, Request(verb, resource, user=user, groups=groups))
                if got != "RequestResponse":
                    problems.append(f"{verb} {resource} by {user}: {got}")
    for verb in READS:  # who read what, never the content (secret values, pod lists)
        for resource in ("pods", "pods/log", "secrets"):
            if (got := level(doc, Request(verb, resource))) != "Metadata":
                problems.append(f"{verb} {resource}: {got}, want Metadata")
    for verb in (*READS, *WRITES):  # secrets of other namespaces: never their values
        if LEVELS.index(level(doc, Request(verb, "secrets", namespace="kube-system"))) > 1:
            problems.append(f"{verb} secrets elsewhere logged with bodies")
    last = doc["rules"][-1]
    if last != {"level": "Metadata"}:
        problems.append(f"the catch-all is {last}, want a bare Metadata rule")
    for other in (
        Request("create", "deployments", group="apps", namespace="default"),
        Request("get", "configmaps"),
        Request("delete", "namespaces", namespace=""),
    ):
        if level(doc, other) != "Metadata":
            problems.append(f"{other} falls through the catch-all")
    return problems


def test_the_policy_matches_the_audit_api_schema() -> None:
    jsonschema.validate(policy(), AUDIT_POLICY_SCHEMA)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update({"omitStage": p.pop("omitStages")}),
        lambda p: p["rules"][0].update({"level": "RequestBody"}),
        lambda p: p["rules"][0].update({"nonResourceURLs": ["/healthz"]}),
        lambda p: p["rules"][0]["resources"][0].update({"resource": ["pods"]}),
        lambda p: p.update({"apiVersion": "audit.k8s.io/v1beta1"}),
        lambda p: p.update({"omitStages": ["RequestRecieved"]}),
    ],
)
def test_the_schema_refuses_a_broken_policy(mutate: Any) -> None:
    broken = copy.deepcopy(policy())
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, AUDIT_POLICY_SCHEMA)


def test_the_policy_logs_the_executor_namespace_as_required() -> None:
    assert NAMESPACE_NAME == "crucible"
    assert policy_problems(policy()) == []


def test_health_probes_are_not_logged_and_other_urls_are() -> None:
    assert level(policy(), Request("get", path="/readyz")) == "None"
    assert level(policy(), Request("get", path="/apis")) == "Metadata"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p["rules"].insert(0, p["rules"].pop()),  # catch-all first
        lambda p: p["rules"].pop(0),  # no exec/attach rule
        lambda p: p["rules"][1].update({"namespaces": ["crucibl"]}),
        lambda p: p["rules"][2].update({"level": "Request"}),
        lambda p: p["rules"][3].update({"level": "RequestResponse"}),  # secret values on reads
        lambda p: p.pop("omitStages"),
        lambda p: p["rules"].append({"level": "RequestResponse"}),
    ],
)
def test_the_coverage_check_catches_a_weakened_policy(mutate: Any) -> None:
    broken = copy.deepcopy(policy())
    mutate(broken)
    assert policy_problems(broken) != []


def test_the_policy_is_no_kustomize_resource() -> None:
    kustomization = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
    assert AUDIT_POLICY.name not in kustomization["resources"]
    assert AUDIT_POLICY.name in (KUBERAY / "kustomization.yaml").read_text(), "say why"
