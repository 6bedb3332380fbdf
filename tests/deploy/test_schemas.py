"""Every manifest against a schema, offline: core kinds against Kubernetes' own (the schemas
bundled with kubernetes-validate), the RayService and PodMonitor against the ones written in
kuberay_schema.py, pod templates inside the RayService against Kubernetes' PodTemplateSpec."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from referencing import Registry, Resource

from tests.deploy.kuberay_schema import PODMONITOR_SCHEMA, RAYSERVICE_SCHEMA
from tests.deploy.manifests import KUBERAY, groups, kuberay_docs, load_all, rayservice

# The oldest Kubernetes the manifests need (ValidatingAdmissionPolicy v1 is GA in 1.30) and the
# newest kubernetes-validate knows.
K8S_VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]
CUSTOM_KINDS = {"RayService": RAYSERVICE_SCHEMA, "PodMonitor": PODMONITOR_SCHEMA}


def _core_docs() -> list[dict[str, Any]]:
    docs = kuberay_docs() + load_all(KUBERAY / "secrets.example.yaml")
    return [d for d in docs if d["kind"] not in CUSTOM_KINDS]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", _core_docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_core_kinds_validate_strictly(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_a_misspelt_core_field_is_caught() -> None:
    policy = next(d for d in _core_docs() if d["kind"] == "NetworkPolicy")
    broken = copy.deepcopy(policy)
    broken["spec"]["podSelectr"] = broken["spec"].pop("podSelector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_every_manifest_is_in_the_kustomization() -> None:
    listed = {d["metadata"]["name"] + d["kind"] for d in kuberay_docs()}
    on_disk = {
        d["metadata"]["name"] + d["kind"]
        for path in KUBERAY.glob("*.yaml")
        if path.name not in ("kustomization.yaml", "secrets.example.yaml", "audit-policy.yaml")
        for d in load_all(path)
    }
    assert listed == on_disk
    assert all(d["kind"] != "Secret" for d in kuberay_docs()), "secrets are created out of band"


def _pod_template_validator(version: str) -> jsonschema.Validator:
    """Kubernetes' PodTemplateSpec schema (strict: unknown fields refused), from the files
    kubernetes-validate bundles."""
    full = next(v for v in kubernetes_validate.utils.all_versions() if v.startswith(version))
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    folder = folder / f"v{full}-local-strict"
    schema = json.loads((folder / "podtemplatespec-v1.json").read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pod_templates_are_valid_pod_templates(version: str) -> None:
    validator = _pod_template_validator(version)
    for name, group in groups(rayservice()).items():
        errors = [e.message for e in validator.iter_errors(group["template"])]
        assert not errors, f"{name}: {errors}"
    broken = copy.deepcopy(groups(rayservice())["executor"]["template"])
    broken["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    assert list(validator.iter_errors(broken)), "a misspelt pod field must be caught"


@pytest.mark.parametrize("kind", sorted(CUSTOM_KINDS))
def test_custom_resources_match_their_schema(kind: str) -> None:
    doc = next(d for d in kuberay_docs() if d["kind"] == kind)
    jsonschema.validate(doc, CUSTOM_KINDS[kind])


def test_rayservice_schema_catches_mistakes() -> None:
    good = rayservice()
    mistakes = []
    misspelt = copy.deepcopy(good)
    group = misspelt["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["maxReplica"] = group.pop("maxReplicas")
    mistakes.append(misspelt)
    numeric = copy.deepcopy(good)  # KubeRay wants strings in rayStartParams and resources
    numeric["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    mistakes.append(numeric)
    old_api = copy.deepcopy(good)
    old_api["apiVersion"] = "ray.io/v1alpha1"
    mistakes.append(old_api)
    for doc in mistakes:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, RAYSERVICE_SCHEMA)
