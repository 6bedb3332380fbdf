"""A JSON Schema for the Kubernetes API server's audit policy file (audit.k8s.io/v1 Policy).

kubernetes-validate bundles the schemas of API kinds only, and the audit policy is none: it is
a kube-apiserver configuration file, so this schema is written here from the "kube-apiserver
Audit Configuration (v1)" reference (Policy, PolicyRule, GroupResources, Level, Stage) and the
rules the API server enforces when it loads the file (a rule is about resources or about
non-resource URLs, never both; a URL starts with "/" and may end in one "*"). Strict: unknown
keys are refused, so a misspelt field fails instead of being ignored by a lenient decoder.
"""

from __future__ import annotations

from typing import Any

LEVELS = ["None", "Metadata", "Request", "RequestResponse"]
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_STAGES = {"type": "array", "items": {"enum": STAGES}, "uniqueItems": True}

_GROUP_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},  # "" is the core group
        "resources": _STRINGS,  # "pods", "pods/exec", "*", "*/scale", "pods/*"
        "resourceNames": _STRINGS,
    },
}

_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["level"],
    "properties": {
        "level": {"enum": LEVELS},
        "users": _STRINGS,
        "userGroups": _STRINGS,
        "verbs": _STRINGS,
        "resources": {"type": "array", "items": _GROUP_RESOURCES},
        "namespaces": {"type": "array", "items": {"type": "string"}},  # "" = cluster-scoped
        "nonResourceURLs": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^/[^*]*\*?$"},
        },
        "omitStages": _STAGES,
        "omitManagedFields": {"type": "boolean"},
    },
    "not": {
        "anyOf": [
            {"required": ["nonResourceURLs", "resources"]},
            {"required": ["nonResourceURLs", "namespaces"]},
        ]
    },
}

AUDIT_POLICY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "rules"],
    "properties": {
        "apiVersion": {"const": "audit.k8s.io/v1"},
        "kind": {"const": "Policy"},
        "metadata": {"type": "object"},
        "rules": {"type": "array", "minItems": 1, "items": _RULE},
        "omitStages": _STAGES,
        "omitManagedFields": {"type": "boolean"},
    },
}
