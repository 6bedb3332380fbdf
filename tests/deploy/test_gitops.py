"""Argo CD (cluster/gitops): the Applications and their AppProject against their schemas, the
sync policy the deployment relies on, and a project that allows exactly what the two
kustomize directories hold."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.argocd_schema import APPLICATION_SCHEMA, APPPROJECT_SCHEMA
from tests.deploy.manifests import GITOPS, REPO, kustomize_docs, load_all, one

PINNED = re.compile(r"^(v\d+\.\d+\.\d+|[0-9a-f]{40})$")  # a release tag or a full commit SHA


def applications() -> list[dict[str, Any]]:
    return [d for d in load_all(GITOPS / "application.yaml") if d["kind"] == "Application"]


def project() -> dict[str, Any]:
    return one(load_all(GITOPS / "appproject.yaml"), "AppProject")


def test_applications_and_project_match_their_schemas() -> None:
    assert len(applications()) == 2
    for app in applications():
        jsonschema.validate(app, APPLICATION_SCHEMA)
    jsonschema.validate(project(), APPPROJECT_SCHEMA)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a["spec"]["syncPolicy"]["automated"].update({"selfheal": True}),
        lambda a: a["spec"]["syncPolicy"]["syncOptions"].append("PruneLats=true"),
        lambda a: a["spec"]["destination"].update({"name": "in-cluster"}),  # name and server
        lambda a: a["spec"]["source"].pop("targetRevision"),
        lambda a: a.update({"apiVersion": "argoproj.io/v1beta1"}),
    ],
)
def test_the_application_schema_refuses_mistakes(mutate: Any) -> None:
    broken = copy.deepcopy(applications()[0])
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, APPLICATION_SCHEMA)


def test_the_project_schema_refuses_mistakes() -> None:
    broken = copy.deepcopy(project())
    broken["spec"]["namespaceResourceWhitelist"][0]["name"] = "crucible-head"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, APPPROJECT_SCHEMA)


def application_problems(app: dict[str, Any], project_name: str) -> list[str]:
    spec, problems = app["spec"], []
    sync = spec.get("syncPolicy", {})
    if sync.get("automated", {}) != {"prune": True, "selfHeal": True}:
        problems.append(f"automated sync is {sync.get('automated')}, want prune and selfHeal")
    options = sync.get("syncOptions", [])
    if "PruneLast=true" not in options:
        problems.append("no PruneLast=true")
    if any(o.startswith("CreateNamespace=") for o in options):
        problems.append("Argo CD must not create the namespace: namespace.yaml does")
    if not PINNED.match(spec["source"]["targetRevision"]):
        problems.append(f"targetRevision {spec['source']['targetRevision']} is not pinned")
    if spec["project"] in ("default", "") or spec["project"] != project_name:
        problems.append(f"project {spec['project']}")
    folder = REPO / spec["source"]["path"]
    if not (folder / "kustomization.yaml").is_file():
        problems.append(f"{spec['source']['path']} is no kustomize directory")
    elif spec["destination"].get("namespace") not in _namespaces(folder):
        problems.append("the destination is not the namespace of the manifests")
    return problems


def _namespaces(folder: Path) -> set[str]:
    docs = kustomize_docs(folder)
    return {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}


def test_applications_sync_automatically_pinned_and_without_creating_the_namespace() -> None:
    paths = {a["spec"]["source"]["path"] for a in applications()}
    assert paths == {"cluster/kuberay", "cluster/progressive"}
    for app in applications():
        assert application_problems(app, project()["metadata"]["name"]) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s["syncPolicy"]["syncOptions"].append("CreateNamespace=true"),
        lambda s: s["syncPolicy"]["syncOptions"].remove("PruneLast=true"),
        lambda s: s["syncPolicy"]["automated"].pop("selfHeal"),
        lambda s: s["source"].update({"targetRevision": "main"}),
        lambda s: s["source"].update({"targetRevision": "HEAD"}),
        lambda s: s.update({"project": "default"}),
        lambda s: s["source"].update({"path": "cluster/kuberya"}),
    ],
)
def test_the_policy_check_catches_a_weakened_application(mutate: Any) -> None:
    broken = copy.deepcopy(applications()[0])
    mutate(broken["spec"])
    assert application_problems(broken, project()["metadata"]["name"]) != []


def _managed() -> list[dict[str, Any]]:
    return [d for a in applications() for d in kustomize_docs(REPO / a["spec"]["source"]["path"])]


def _group(doc: dict[str, Any]) -> str:
    return doc["apiVersion"].rpartition("/")[0]  # "" for v1


def project_problems(proj: dict[str, Any], apps: list[dict[str, Any]]) -> list[str]:
    """Exactly what the Applications deploy: their repository, their namespace, their
    cluster-scoped objects by name and their namespaced kinds; never a Secret or a wildcard."""
    spec, problems = proj["spec"], []
    if set(spec["sourceRepos"]) != {a["spec"]["source"]["repoURL"] for a in apps}:
        problems.append(f"source repositories {spec['sourceRepos']}")
    if any(spec["destinations"] != [a["spec"]["destination"]] for a in apps):
        problems.append(f"destinations {spec['destinations']}")
    docs = _managed()
    cluster = {(_group(d), d["kind"], d["metadata"]["name"]) for d in docs
               if "namespace" not in d["metadata"]}  # fmt: skip
    whitelist = spec["clusterResourceWhitelist"]
    allowed = {(k["group"], k["kind"], k.get("name", "*")) for k in whitelist}
    if allowed != cluster:
        problems.append(f"cluster-scoped: allowed {allowed - cluster}, missing {cluster - allowed}")
    namespaced = {(_group(d), d["kind"]) for d in docs if "namespace" in d["metadata"]}
    allowed_ns = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    if allowed_ns != namespaced:
        problems.append(f"namespaced: allowed {allowed_ns - namespaced}, "
                        f"missing {namespaced - allowed_ns}")  # fmt: skip
    if ("", "Secret") in allowed_ns or "*" in str(spec):
        problems.append("Secrets or a wildcard allowed")
    return problems


def test_the_project_allows_exactly_what_the_applications_deploy() -> None:
    assert project()["metadata"]["name"] != "default"
    assert project_problems(project(), applications()) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s["sourceRepos"].append("*"),
        lambda s: s["destinations"][0].update({"namespace": "*"}),
        lambda s: s["clusterResourceWhitelist"].append({"group": "*", "kind": "*"}),
        lambda s: s["clusterResourceWhitelist"][0].pop("name"),
        lambda s: s["namespaceResourceWhitelist"].append({"group": "", "kind": "Secret"}),
        lambda s: s["namespaceResourceWhitelist"].pop(),
    ],
)
def test_the_project_check_catches_a_wider_project(mutate: Any) -> None:
    broken = copy.deepcopy(project())
    mutate(broken["spec"])
    assert project_problems(broken, applications()) != []
