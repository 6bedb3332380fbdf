"""Who runs where: the node labels and resources that make a Ray node an executor.

The single source of truth for the local cluster (``crucible-ray cluster up``), the actors'
scheduling options and the deployment manifests under ``cluster/`` (a test checks they agree).
Executor nodes are sacrificial: they run untrusted code (in gVisor) and nothing else. The
control plane (dispatcher, HTTP ingress) never runs there.
"""

from __future__ import annotations

from typing import Any

ROLE_LABEL = "crucible.dev/role"
EXECUTOR_ROLE = "executor"
HEAD_ROLE = "head"
SLOT_RESOURCE = "sandbox_slots"  # concurrent sandboxes a node can run (about one per core)

NAMESPACE = "crucible"
# Our actors take several calls per evaluation; Ray's per-call task events (for its dashboard's
# task list) would cost CPU in every worker and the GCS that sandboxes need more. Our own
# metrics and audit log say what happened. (Serve turns them off for its actors likewise.)
QUIET = {"enable_task_events": False}
DISPATCHER_NAME = "crucible-dispatcher"


def executor_node_labels() -> dict[str, str]:
    return {ROLE_LABEL: EXECUTOR_ROLE}


def executor_node_resources(slots: int) -> dict[str, float]:
    return {SLOT_RESOURCE: float(slots)}


def executor_actor_options(slots: int) -> dict[str, Any]:
    """An executor actor holds ``slots`` sandbox slots, on an executor node only.

    It needs no Ray CPU: the work happens in containers, accounted by ``sandbox_slots``.
    When no node can take it, the actor stays pending, which is the demand the Ray
    autoscaler (KubeRay, cluster launcher) answers by adding executor nodes.
    """
    return {
        "label_selector": {ROLE_LABEL: EXECUTOR_ROLE},
        "resources": {SLOT_RESOURCE: float(slots)},
        "num_cpus": 0,
        **QUIET,
    }


def control_plane_options() -> dict[str, Any]:
    """Dispatcher and ingress: anywhere except an executor node."""
    return {"label_selector": {ROLE_LABEL: f"!{EXECUTOR_ROLE}"}, "num_cpus": 0}


def control_plane_singleton(cls: type, name: str, *args: Any, max_concurrency: int = 1000) -> Any:
    """The cluster's one named, detached instance of ``cls`` (created if missing), restarted by
    Ray if it dies, and never on an executor node."""
    import ray

    return (
        ray.remote(cls)
        .options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_concurrency=max_concurrency,
            **control_plane_options(),
            **QUIET,
        )
        .remote(*args)
    )


def wait_until_names_free(prefixes: tuple[str, ...], timeout_s: float = 30.0) -> bool:
    """Wait until no actor of ours is named with one of ``prefixes`` (``ray.kill`` is
    asynchronous: a killed actor's name stays taken for a moment). Whether they went."""
    import ray
    from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

    def free() -> bool:
        return not any(entry["namespace"] == NAMESPACE and entry["name"].startswith(prefixes)
                       for entry in ray.util.list_named_actors(all_namespaces=True))  # fmt: skip

    return Retrying(
        retry=retry_if_result(lambda gone: not gone), stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.1), retry_error_callback=lambda _state: False,
    )(free)  # fmt: skip
