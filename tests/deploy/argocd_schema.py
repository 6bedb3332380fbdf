"""JSON Schemas for the parts of Argo CD's Application and AppProject (argoproj.io/v1alpha1) that
cluster/gitops uses.

No package on PyPI ships Argo CD's CRDs, so these are written here from Argo CD's
documentation (operator manual: "Declarative Setup", application.yaml and project.yaml
references; user guide: "Sync Options", "Automated Sync Policy") and its CRDs' field names for
Argo CD 3.x. Strict where we write fields (unknown keys refused), limited to the fields we use
or may soon use. Check them against the CRDs of the Argo CD you run.
"""

from __future__ import annotations

from typing import Any

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}
_DESTINATION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "server": {"type": "string", "pattern": "^https://"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    },
    "oneOf": [{"required": ["server"]}, {"required": ["name"]}],
}
_SOURCE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["repoURL", "path", "targetRevision"],
    "properties": {
        "repoURL": {"type": "string", "minLength": 1},
        "path": {"type": "string", "minLength": 1},
        "targetRevision": {"type": "string", "minLength": 1},
        "kustomize": {"type": "object"},
    },
}
# Sync options are "Name=value" strings; these are the documented ones.
SYNC_OPTIONS = ["Prune", "Delete", "Validate", "SkipDryRunOnMissingResource",
                "ApplyOutOfSyncOnly", "PrunePropagationPolicy", "PruneLast", "Replace",
                "ServerSideApply", "ClientSideApplyMigration", "FailOnSharedResource",
                "RespectIgnoreDifferences", "CreateNamespace"]  # fmt: skip
_SYNC_POLICY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "automated": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "prune": {"type": "boolean"},
                "selfHeal": {"type": "boolean"},
                "allowEmpty": {"type": "boolean"},
                "enabled": {"type": "boolean"},
            },
        },
        "syncOptions": {
            "type": "array",
            "items": {"type": "string", "pattern": "^(" + "|".join(SYNC_OPTIONS) + ")=[^=]+$"},
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "limit": {"type": "integer"},
                "backoff": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "duration": {"type": "string"},
                        "factor": {"type": "integer", "minimum": 1},
                        "maxDuration": {"type": "string"},
                    },
                },
            },
        },
    },
}

APPLICATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "argoproj.io/v1alpha1"},
        "kind": {"const": "Application"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["project", "source", "destination"],
            "properties": {
                "project": {"type": "string", "minLength": 1},
                "source": _SOURCE,
                "destination": _DESTINATION,
                "syncPolicy": _SYNC_POLICY,
                "ignoreDifferences": {"type": "array"},
                "revisionHistoryLimit": {"type": "integer", "minimum": 0},
            },
        },
    },
}

_KIND = {
    "type": "object",
    "additionalProperties": False,
    "required": ["group", "kind"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string", "minLength": 1},
        "name": {"type": "string"},  # cluster-scoped lists only (Argo CD >= 3.3)
    },
}
_NAMESPACED_KIND = {**_KIND, "properties": {k: v for k, v in _KIND["properties"].items()
                                             if k != "name"}}  # fmt: skip

APPPROJECT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "argoproj.io/v1alpha1"},
        "kind": {"const": "AppProject"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sourceRepos", "destinations"],
            "properties": {
                "description": {"type": "string"},
                "sourceRepos": _STRINGS,
                "destinations": {"type": "array", "minItems": 1, "items": _DESTINATION},
                "clusterResourceWhitelist": {"type": "array", "items": _KIND},
                "clusterResourceBlacklist": {"type": "array", "items": _KIND},
                "namespaceResourceWhitelist": {"type": "array", "items": _NAMESPACED_KIND},
                "namespaceResourceBlacklist": {"type": "array", "items": _NAMESPACED_KIND},
                "sourceNamespaces": _STRINGS,
                "roles": {"type": "array"},
                "syncWindows": {"type": "array"},
            },
        },
    },
}
