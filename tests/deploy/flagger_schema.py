"""JSON Schemas for the parts of Flagger's Canary and MetricTemplate (flagger.app/v1beta1) that
cluster/progressive uses.

No package on PyPI ships Flagger's CRDs, so these are written here from Flagger's API reference
(docs: "How it works", "Metrics Analysis", "Gateway API Canary Deployments"; the CRD's
openAPIV3Schema for Flagger 1.37-1.44). Flagger's own CRD accepts unknown fields in places;
these are strict (unknown keys refused) and cover the fields we use or may soon use, with the
enums and patterns of the CRD. Check them against the CRD of the Flagger you install
(`kubectl explain canary.spec`).
"""

from __future__ import annotations

from typing import Any

_DURATION = {"type": "string", "pattern": "^[0-9]+(m|s)$"}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": _NAME, "namespace": _NAME},
}
_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": _NAME, "namespace": _NAME},
}

_GATEWAY_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": _NAME,
        "namespace": _NAME,
        "sectionName": {"type": "string"},
        "port": {"type": "integer"},
    },
}

_SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "name": _NAME,
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "portName": {"type": "string"},
        "targetPort": {"type": ["integer", "string"]},
        "hosts": {"type": "array", "items": {"type": "string"}},
        "gatewayRefs": {"type": "array", "minItems": 1, "items": _GATEWAY_REF},
        "timeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "backendTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "apex": {"type": "object"},
        "primary": {"type": "object"},
        "canary": {"type": "object"},
    },
}

_METRIC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "interval": _DURATION,
        "threshold": {"type": "number"},
        "thresholdRange": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
        },
        "query": {"type": "string"},
        "templateRef": _REF,
        "templateVariables": _STR_MAP,
    },
}

_WEBHOOK_TYPES = ["", "confirm-rollout", "pre-rollout", "rollout", "confirm-promotion",
                  "post-rollout", "event", "rollback", "confirm-traffic-increase"]  # fmt: skip

_ANALYSIS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "interval": _DURATION,
        "iterations": {"type": "integer", "minimum": 1},
        "threshold": {"type": "integer", "minimum": 1},
        "maxWeight": {"type": "integer", "minimum": 1, "maximum": 100},
        "stepWeight": {"type": "integer", "minimum": 1, "maximum": 100},
        "stepWeights": {"type": "array", "items": {"type": "integer"}},
        "metrics": {"type": "array", "items": _METRIC},
        "webhooks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "url"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"enum": _WEBHOOK_TYPES},
                    "url": {"type": "string"},
                    "timeout": _DURATION,
                    "metadata": _STR_MAP,
                },
            },
        },
    },
}

PROVIDERS = ["apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi:v1",
             "gatewayapi:v1beta1", "gloo", "istio", "knative", "kubernetes", "kuma", "linkerd",
             "nginx", "osm", "skipper", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3",
             "traefik"]  # fmt: skip

METRIC_PROVIDERS = ["prometheus", "influxdb", "datadog", "externalmetrics", "stackdriver",
                    "cloudwatch", "newrelic", "graphite", "dynatrace", "keptn",
                    "splunk"]  # fmt: skip

CANARY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "flagger.app/v1beta1"},
        "kind": {"const": "Canary"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["targetRef", "service", "analysis"],
            "properties": {
                "provider": {"enum": PROVIDERS},
                "targetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["apiVersion", "kind", "name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"enum": ["DaemonSet", "Deployment", "Service"]},
                        "name": _NAME,
                    },
                },
                "progressDeadlineSeconds": {"type": "integer", "minimum": 1},
                "service": _SERVICE,
                "analysis": _ANALYSIS,
                "skipAnalysis": {"type": "boolean"},
                "revertOnDeletion": {"type": "boolean"},
                "suspend": {"type": "boolean"},
            },
        },
    },
}

METRIC_TEMPLATE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "flagger.app/v1beta1"},
        "kind": {"const": "MetricTemplate"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["provider", "query"],
            "properties": {
                "provider": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": METRIC_PROVIDERS},
                        "address": {"type": "string", "pattern": "^https?://"},
                        "secretRef": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name"],
                            "properties": {"name": _NAME},
                        },
                        "insecureSkipVerify": {"type": "boolean"},
                    },
                },
                "query": {"type": "string", "minLength": 1},
            },
        },
    },
}
