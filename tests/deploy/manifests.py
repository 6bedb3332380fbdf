"""Reading the deployment files under cluster/ the way the tests need them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"
AWS = REPO / "cluster" / "aws"
PROGRESSIVE = REPO / "cluster" / "progressive"
GITOPS = REPO / "cluster" / "gitops"
WORKFLOWS = REPO / ".github" / "workflows"
AUDIT_POLICY = KUBERAY / "audit-policy.yaml"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomize_docs(folder: Path) -> list[dict[str, Any]]:
    """Every object `kubectl apply -k FOLDER` would create (its resources are plain files)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_all(folder / name)]


def kuberay_docs() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k cluster/kuberay` would create."""
    return kustomize_docs(KUBERAY)


def progressive_docs() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k cluster/progressive` would create."""
    return kustomize_docs(PROGRESSIVE)


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def rayservice() -> dict[str, Any]:
    return one(load_all(KUBERAY / "rayservice.yaml"), "RayService")


def green_rayservice() -> dict[str, Any]:
    """The second track of progressive delivery (cluster/progressive)."""
    return one(load_all(PROGRESSIVE / "rayservice-green.yaml"), "RayService")


def serve_config(service: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def groups(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Head and worker groups by name ("headgroup" for the head, as Ray's autoscaler names it)."""
    cluster = service["spec"]["rayClusterConfig"]
    named = {"headgroup": cluster["headGroupSpec"]}
    named.update({g["groupName"]: g for g in cluster["workerGroupSpecs"]})
    return named


def aws_cluster() -> dict[str, Any]:
    return yaml.safe_load((AWS / "cluster.yaml").read_text())
