"""A JSON Schema for the parts of KubeRay's RayService (ray.io/v1) that cluster/kuberay uses.

No package on PyPI ships KubeRay's CRDs or an OpenAPI schema of RayService, and this project's
machines reach no other source, so this schema is written here from KubeRay's documented API
reference (ray.io/v1, KubeRay 1.5-1.6: RayService, RayClusterSpec, HeadGroupSpec,
WorkerGroupSpec, AutoscalerOptions, AuthOptions). It is strict where we write fields (unknown
keys are refused, so a misspelt field fails) and only covers fields we use or may soon use;
pod templates are checked separately against Kubernetes' own PodTemplateSpec schema. Check it
against the CRD of the KubeRay version you install (`kubectl explain rayservice.spec`).
"""

from __future__ import annotations

from typing import Any

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT = {"type": "object"}  # Kubernetes types, validated elsewhere or passed through

_AUTOSCALER_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {"enum": ["v1", "v2"]},
        "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
        "idleTimeoutSeconds": {"type": "integer", "minimum": 0},
        "resources": _OBJECT,
        "securityContext": _OBJECT,
        "image": {"type": "string"},
        "imagePullPolicy": {"enum": ["Always", "Never", "IfNotPresent"]},
        "env": {"type": "array"},
        "envFrom": {"type": "array"},
        "volumeMounts": {"type": "array"},
    },
}

_AUTH_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mode": {"enum": ["disabled", "token"]},
        "secretName": {"type": "string", "minLength": 1},
    },
}

_GROUP_COMMON: dict[str, Any] = {
    "rayStartParams": _STR_MAP,  # values are strings: `num-cpus: "0"`, not 0
    "labels": _STR_MAP,
    "resources": _STR_MAP,  # quantities as strings: `sandbox_slots: "8"`
    "template": {
        "type": "object",
        "required": ["spec"],
        "properties": {"metadata": _OBJECT, "spec": _OBJECT},
    },
}

_HEAD_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        **_GROUP_COMMON,
        "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
        "enableIngress": {"type": "boolean"},
        "headService": _OBJECT,
    },
}

_WORKER_GROUP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template"],
    "properties": {
        **_GROUP_COMMON,
        "groupName": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "replicas": {"type": "integer", "minimum": 0},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        "idleTimeoutSeconds": {"type": "integer", "minimum": 0},
        "numOfHosts": {"type": "integer", "minimum": 1},
        "suspend": {"type": "boolean"},
        "scaleStrategy": _OBJECT,
    },
}

_RAY_CLUSTER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headGroupSpec"],
    "properties": {
        "rayVersion": {"type": "string"},
        "enableInTreeAutoscaling": {"type": "boolean"},
        "autoscalerOptions": _AUTOSCALER_OPTIONS,
        "authOptions": _AUTH_OPTIONS,
        "headServiceAnnotations": _STR_MAP,
        "headGroupSpec": _HEAD_GROUP,
        "workerGroupSpecs": {"type": "array", "items": _WORKER_GROUP},
        "gcsFaultToleranceOptions": _OBJECT,
        "suspend": {"type": "boolean"},
    },
}

_UPGRADE_TYPES = ["NewCluster", "NewClusterWithIncrementalUpgrade", "None"]

RAYSERVICE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["rayClusterConfig", "serveConfigV2"],
            "properties": {
                "serveConfigV2": {"type": "string"},  # a YAML document in a string
                "rayClusterConfig": _RAY_CLUSTER_SPEC,
                "excludeHeadPodFromServeSvc": {"type": "boolean"},
                "upgradeStrategy": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": _UPGRADE_TYPES},
                    },
                },
                "serveService": _OBJECT,
                "rayClusterDeletionDelaySeconds": {"type": "integer", "minimum": 0},
                "deploymentUnhealthySecondThreshold": {"type": "integer"},
                "serviceUnhealthySecondThreshold": {"type": "integer"},
            },
        },
    },
}

# monitoring.coreos.com/v1 PodMonitor, likewise from the Prometheus Operator's API reference.
PODMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _OBJECT,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}
