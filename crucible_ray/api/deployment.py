"""The Ray Serve application: the FastAPI ingress as a Serve deployment, off executor nodes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import ray
from ray import serve

from crucible_ray.api import analyser
from crucible_ray.api.app import api, install, make_services
from crucible_ray.api.plane import QUEUE
from crucible_ray.execution.client import get_dispatcher
from crucible_ray.execution.queue_client import ensure_queue_plane, stop_queue_plane
from crucible_ray.models import EvalResult, EvalStatus
from crucible_ray.reasons import Reason, error_fields
from crucible_ray.settings import Settings, load_settings
from crucible_ray.topology import control_plane_options

log = logging.getLogger(__name__)
APP_NAME = "crucible"
STORE_PING_S = 5.0


@serve.deployment(
    name="Ingress",
    ray_actor_options=control_plane_options(),
    max_ongoing_requests=32,
    max_queued_requests=64,
    backpressure_config={"status_code": 429, "retry_after_s": 1.0},
    autoscaling_config={
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 8,
        "upscale_delay_s": 10,
        "downscale_delay_s": 120,
    },
    health_check_period_s=10,
)
@serve.ingress(api)
class Ingress:
    def __init__(self, public: dict[str, Any]) -> None:
        settings = load_settings(public)  # secrets from this replica's environment or files
        self._services = make_services(settings)
        install(self._services)
        analyser.warm()
        threading.Thread(target=self._purge_forever, name="purge", daemon=True).start()

    def _purge_forever(self) -> None:
        settings = self._services.settings
        retention = timedelta(days=settings.retention_days)
        while True:
            try:
                purged = self._services.store.purge(retention)
                if purged:
                    log.info("purged %d results older than %s", purged, retention)
                if self._services.settings.execution_plane != QUEUE:
                    self._reconcile()  # the queue plane's records are never left unqueued
            except Exception as exc:  # the store being down must not kill the replica
                log.warning("purge/reconcile failed: %s", exc)
            time.sleep(settings.maintenance_every_s)

    def _reconcile(self) -> None:
        """Records nobody will finish end as errors, so every accepted evaluation has a recorded
        result: left by a dispatcher that died (its queue lived in memory) or by a replica that
        died between recording and admitting. The code is not stored, so they cannot be re-run.
        The age bound keeps clear of a submission being admitted right now."""
        store, dispatcher = self._services.store, self._services.plane.handle  # type: ignore[attr-defined]
        age = timedelta(seconds=self._services.settings.reconcile_after_s)
        for eval_id in store.unfinished(older_than=age):
            if ray.get(dispatcher.wait.remote(eval_id, 0)) is None:
                store.finish(
                    EvalResult(
                        id=eval_id,
                        status=EvalStatus.ERROR,
                        language="unknown",
                        **error_fields(Reason.LOST_BEFORE_RUN),
                    )
                )

    async def check_health(self) -> None:
        """Never fails for the store: a new replica would find it down too. Meanwhile requests
        that need it get 503 and the replica serves again by itself once it is back. The ping
        runs off the event loop, bounded, so a hung database cannot stall the replica."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._services.store.ping), STORE_PING_S)
        except Exception as exc:  # also the timeout; the outage is logged, not fatal
            log.warning("result store unreachable: %s", type(exc).__name__)


def deploy(settings: Settings, *, num_replicas: int | None = None) -> None:
    """Start Serve's HTTP proxy and (re)deploy the app on this machine's cluster. Ray must be
    initialised.

    No secret is handed to Ray (Serve keeps a deployment's arguments in its checkpoint in the
    GCS): they are written to 0600 files under the state directory, which the replicas and the
    dispatcher, on this machine, read at start."""
    changed = settings.write_shared_secrets()
    if settings.jwt_public_keys is None:
        settings.secret  # noqa: B018 (the generated one is created once, here, not by replicas)
    dispatcher_config = settings.dispatcher.model_copy(
        update={"store_state_dir": str(settings.state_dir)}
    )
    settings = settings.model_copy(update={"dispatcher": dispatcher_config})
    serve.start(
        http_options={
            "host": settings.host,
            "port": settings.port,
            "request_timeout_s": settings.request_timeout_s,
        }
    )
    if settings.execution_plane == QUEUE:
        ensure_queue_plane(
            settings.dispatcher,
            settings.dispatch_actors,
            secrets_changed=bool({"database_url", "queue_key"} & changed),
        )
    else:
        _start_dispatcher(settings, changed)
    options: dict[str, Any] = {}
    if num_replicas is not None:
        options = {"num_replicas": num_replicas, "autoscaling_config": None}
    serve.run(
        Ingress.options(**options).bind(settings.public()),
        name=APP_NAME,
        route_prefix="/",
        blocking=False,
    )


def _start_dispatcher(settings: Settings, changed: set[str]) -> None:
    dispatcher = get_dispatcher(settings.dispatcher)
    started_with = ray.get(dispatcher.config_dump.remote())
    # Replaced when started otherwise (e.g. without a store) or when the store's URL changed:
    # the URL is not in its config, so the changed secret file says so.
    if "database_url" in changed or started_with != settings.dispatcher.model_dump():
        get_dispatcher(settings.dispatcher, replace=True)


def undeploy() -> None:
    from crucible_ray.api.ratelimit import LIMITER_NAME
    from crucible_ray.execution.client import stop_dispatcher
    from crucible_ray.topology import NAMESPACE

    serve.shutdown()
    stop_dispatcher()
    stop_queue_plane()
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(LIMITER_NAME, namespace=NAMESPACE), no_restart=True)
