"""What the manifests allow: network paths, Pod Security, host access, API credentials."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crucible_ray.topology import ROLE_LABEL
from tests.deploy.manifests import groups, kuberay_docs, rayservice

EXECUTOR_HOST_PATHS = {"/var/run/docker.sock", "/var/lib/crucible/sandboxes"}


def _pods() -> dict[str, dict[str, Any]]:
    """Pod metadata and spec by group, as KubeRay creates them from the templates."""
    return {name: g["template"] for name, g in groups(rayservice()).items()}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels and In/NotIn/Exists expressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        have, op = labels.get(expr["key"]), expr["operator"]
        if op in ("In", "NotIn") and (have in expr["values"]) != (op == "In"):
            return False
        if (op == "Exists" and have is None) or (op == "DoesNotExist" and have is not None):
            return False
    return True


def _policies() -> list[dict[str, Any]]:
    return [d for d in kuberay_docs() if d["kind"] == "NetworkPolicy"]


def test_every_network_policy_selects_pods_we_run() -> None:
    for policy in _policies():
        selector = policy["spec"]["podSelector"]
        selected = [n for n, p in _pods().items() if _matches(selector, p["metadata"]["labels"])]
        assert selected, f"{policy['metadata']['name']} selects no pod"
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    peers = [p for p in _pods().values()
                             if _matches(peer["podSelector"], p["metadata"]["labels"])]  # fmt: skip
                    assert peers, f"{policy['metadata']['name']}: a peer selects no pod"


def egress_of(pod: dict[str, Any], policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every egress peer the policies allow this pod (policies are additive)."""
    labels = pod["metadata"]["labels"]
    return [
        peer
        for p in policies
        if _matches(p["spec"]["podSelector"], labels)
        for rule in p["spec"].get("egress", [])
        for peer in rule.get("to", [{"everywhere": True}])
    ]


def executor_egress_problems(policies: list[dict[str, Any]]) -> list[str]:
    """Executors may reach the Ray cluster's pods and cluster DNS, nothing else."""
    executor = _pods()["executor"]
    covered = [p for p in policies if _matches(p["spec"]["podSelector"],
                                               executor["metadata"]["labels"])]  # fmt: skip
    problems = []
    if not any("Egress" in p["spec"].get("policyTypes", []) for p in covered):
        problems.append("no policy restricts executor egress")
    for peer in egress_of(executor, policies):
        if "ipBlock" in peer or "everywhere" in peer:
            problems.append(f"executors may reach addresses: {peer}")
        elif "namespaceSelector" in peer:
            if peer.get("podSelector", {}).get("matchLabels") != {"k8s-app": "kube-dns"}:
                problems.append(f"executors may reach another namespace: {peer}")
        elif peer["podSelector"] != {"matchLabels": {"app.kubernetes.io/part-of": "crucible-ray"}}:
            problems.append(f"unexpected peer {peer}")
    return problems


def test_executors_reach_only_the_ray_cluster_and_dns() -> None:
    assert executor_egress_problems(_policies()) == []
    leaky = copy.deepcopy(_policies())
    db = next(p for p in leaky if p["metadata"]["name"] == "control-plane-to-database")
    db["spec"]["podSelector"]["matchExpressions"][0]["values"].append("executor")
    assert executor_egress_problems(leaky) != []
    no_default_deny = [p for p in _policies() if p["metadata"]["name"] != "default-deny"]
    assert executor_egress_problems(no_default_deny) == [], "ray-cluster alone restricts egress"


def test_the_api_port_is_open_to_the_gateway_only() -> None:
    open_ports = [
        (p["metadata"]["name"], rule)
        for p in _policies()
        for rule in p["spec"].get("ingress", [])
        if any(port["port"] == 8000 for port in rule.get("ports", []))
    ]
    assert [name for name, _ in open_ports] == ["ingress-from-gateway"]
    (rule,) = [rule for _, rule in open_ports]
    gateway = {"namespaceSelector": {"matchLabels": {"crucible.dev/access": "gateway"}}}
    assert rule["from"] == [gateway]


def restricted_problems(pod: dict[str, Any]) -> list[str]:
    """Pod Security "restricted", the rules that apply to these pods."""
    spec, problems = pod["spec"], []
    context = spec.get("securityContext", {})
    if context.get("runAsNonRoot") is not True or context.get("runAsUser") == 0:
        problems.append("not runAsNonRoot")
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("no RuntimeDefault seccomp profile")
    if any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")):
        problems.append("shares a host namespace")
    if any("hostPath" in v for v in spec.get("volumes", [])):
        problems.append("mounts a host path")
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
            problems.append(f"{c['name']} may escalate privileges")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc["capabilities"].get("add"):
            problems.append(f"{c['name']} keeps capabilities")
    return problems


@pytest.mark.parametrize("group", ["headgroup", "ingress"])
def test_control_plane_pods_meet_restricted(group: str) -> None:
    assert restricted_problems(_pods()[group]) == []


def test_executor_pods_differ_from_restricted_only_by_their_host_paths() -> None:
    executor = _pods()["executor"]
    assert restricted_problems(executor) == ["mounts a host path"]
    spec = executor["spec"]
    host_paths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    assert host_paths == EXECUTOR_HOST_PATHS
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts >= EXECUTOR_HOST_PATHS, "code dirs must sit at the same path in pod and node"
    assert spec["nodeSelector"] == {"crucible.dev/pool": "executor"}
    assert spec["automountServiceAccountToken"] is False
    assert {t["key"] for t in spec["tolerations"]} == {"crucible.dev/untrusted"}
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["labelSelector"]["matchLabels"] == {ROLE_LABEL: "executor"}


def test_restricted_check_catches_a_weakened_pod() -> None:
    pod = copy.deepcopy(_pods()["ingress"])
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    pod["spec"]["securityContext"].pop("seccompProfile")
    assert len(restricted_problems(pod)) == 2


def test_only_the_head_holds_kubernetes_api_rights() -> None:
    docs = kuberay_docs()
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    bound = {s["name"] for d in docs if d["kind"] == "RoleBinding" for s in d["subjects"]}
    assert bound == {"crucible-head"}
    for name, pod in _pods().items():
        account = pod["spec"]["serviceAccountName"]
        assert account in accounts
        if account != "crucible-head":
            assert accounts[account]["automountServiceAccountToken"] is False, name
    (role,) = [d for d in docs if d["kind"] == "Role"]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "patch"}, "the autoscaler reads pods and patches its cluster"
    assert all("*" not in rule["resources"] for rule in role["rules"])


def test_secrets_reach_the_control_plane_only() -> None:
    """Ingress replicas and the dispatcher (head or ingress) read them from their environment;
    executors never get them."""
    for name, pod in _pods().items():
        refs = [e for c in pod["spec"]["containers"] for e in c.get("envFrom", [])]
        control_plane = name in ("ingress", "headgroup")
        expected = [{"secretRef": {"name": "crucible-app"}}] if control_plane else []
        assert refs == expected, name
    auth = rayservice()["spec"]["rayClusterConfig"]["authOptions"]
    assert auth == {"mode": "token", "secretName": "crucible-ray-token"}


def test_admission_policy_names_the_same_host_paths_and_pool() -> None:
    (policy,) = [d for d in kuberay_docs() if d["kind"] == "ValidatingAdmissionPolicy"]
    text = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for path in EXECUTOR_HOST_PATHS:
        assert f"'{path}'" in text
    assert "object.spec.nodeSelector['crucible.dev/pool'] == 'executor'" in text
    (binding,) = [d for d in kuberay_docs() if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
