"""The Serve application as a Serve config file names it: ``crucible_ray.api.serve_app:build``.

KubeRay's RayService (``serveConfigV2``) and ``serve deploy`` on a launched cluster import this
builder on the cluster; ``crucible-ray up`` uses :func:`crucible_ray.api.deployment.deploy`.
Secrets come from the environment (``CRUCIBLE_*``, from a Secret) of the pods that run the
replicas and the dispatcher, which read them there at start: none is bound into the
application, whose arguments Serve keeps in its checkpoint in the GCS. The other settings may
also come from the config's ``args``, validated by the same :class:`Settings` (unknown keys
refused).
"""

from __future__ import annotations

from typing import Any

from ray import serve

from crucible_ray.api.deployment import Ingress
from crucible_ray.settings import Settings


def cluster_settings(args: dict[str, Any] | None = None) -> Settings:
    """Settings for a multi-node deployment: refuses what only works on one machine."""
    settings = Settings(**(args or {}))
    if settings.jwt_secret is None and settings.jwt_public_keys is None:
        # The default is a file on one node; replicas elsewhere would sign with other secrets.
        raise ValueError(
            "set CRUCIBLE_JWT_PUBLIC_KEYS (recommended) or CRUCIBLE_JWT_SECRET: every ingress "
            "replica must verify tokens with the same keys"
        )
    if settings.database_url is None:
        # SQLite lives on one pod's disk; the dispatcher and every replica must share the store.
        raise ValueError("set CRUCIBLE_DATABASE_URL (postgresql+psycopg://...) for a cluster")
    if settings.execution_plane == "queue" and settings.queue_key is None:
        # The default is a file on one node; Dispatch actors elsewhere could not open requests.
        raise ValueError("set CRUCIBLE_QUEUE_KEY (32 random bytes, base64): every ingress "
                         "replica and Dispatch actor must seal with the same key")  # fmt: skip
    store = {"store_state_dir": str(settings.state_dir), "store_needs_database_url": True}
    dispatcher = settings.dispatcher.model_copy(update=store)
    return settings.model_copy(update={"dispatcher": dispatcher})


def build(args: dict[str, Any]) -> serve.Application:
    """Called by Serve with the application's ``args`` from the config file."""
    import ray

    settings = cluster_settings(args)
    if ray.is_initialized() and settings.execution_plane == "queue":
        from crucible_ray.execution.queue_client import ensure_queue_plane

        ensure_queue_plane(settings.dispatcher, settings.dispatch_actors)
    elif ray.is_initialized():  # on the cluster (Serve's build task), as deploy() does
        _sync_dispatcher(settings)
    return Ingress.bind(settings.public())


def _sync_dispatcher(settings: Settings) -> None:
    """A dispatcher started with another configuration is replaced, so that a changed config
    file takes effect (the dispatcher is a detached actor and outlives redeployments). Only
    non-secret fields are compared: the store's URL is read from the pod's environment."""
    import ray

    from crucible_ray.execution.client import get_dispatcher

    dispatcher = get_dispatcher(settings.dispatcher)
    if ray.get(dispatcher.config_dump.remote()) != settings.dispatcher.model_dump():
        get_dispatcher(settings.dispatcher, replace=True)
