"""DispatcherConfig: the execution layer's limits, with defaults derived from slot counts."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crucible_ray.policy import SandboxPolicy


class DispatcherConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    slots_per_actor: int = Field(2, ge=1, le=64, description="concurrent sandboxes per actor")
    min_actors: int = Field(1, ge=0, le=1000)
    max_actors: int = Field(8, ge=1, le=1000)
    max_pending: int | None = Field(
        None, ge=1, description="running + queued limit; default: twice the maximum slots"
    )
    max_pending_per_user: int | None = Field(
        None, ge=1, description="running + queued limit of one user (the API's user, or "
        "batch:<login>); default: the whole admission limit. Free slots go to the user with "
        "the fewest running either way (crucible_ray/execution/fairness.py)"
    )  # fmt: skip
    downscale_delay_s: float = Field(30.0, ge=0, description="idle time before an actor stops")
    scale_interval_s: float = Field(1.0, gt=0)
    queue_timeout_s: float = Field(300.0, gt=0, description="longest wait for a free executor")
    unavailable_after_s: float = Field(
        60.0, gt=0, description="with no executor ready for this long, submissions are refused"
    )
    executor_call_slack_s: float = Field(
        120.0, gt=0, description="beyond the program timeout: an executor silent longer is hung"
    )
    probe_timeout_s: float = Field(
        10.0, gt=0, description="an executor that does not answer its liveness probe is lost"
    )
    warm_per_slot: int = Field(1, ge=0, le=4, description="python sandboxes booted ahead")
    # Boots are CPU-bound: on 2 cores, 1 in flight gives 3.2 runsc boots/s, 2 give 6.5 at the
    # same CPU per boot, 4 give 8.7 but leave no core for programs (benchmarks/results/boots.md).
    boot_workers_per_actor: int = Field(
        2, ge=1, le=16, description="sandboxes an actor boots at once (boots are CPU-bound)"
    )
    result_retention: int = Field(100_000, ge=100, description="finished results kept")
    policy: SandboxPolicy = Field(
        default_factory=SandboxPolicy,
        description="what every sandbox enforces (from Settings.sandbox in a service)",
    )
    state_dir: Path | None = Field(
        None, description="executors' state directory; default: CRUCIBLE_STATE_DIR on their node"
    )
    store_state_dir: str | None = Field(
        None,
        description="record final results in the store of the service whose state directory "
        "this is; the dispatcher reads its URL itself (environment or the secret file there)",
    )
    store_needs_database_url: bool = Field(
        False,
        description="refuse to start without CRUCIBLE_DATABASE_URL where the dispatcher runs "
        "(on a cluster, the default SQLite file would be one node's)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> DispatcherConfig:
        if self.min_actors > self.max_actors:
            raise ValueError("min_actors must not exceed max_actors")
        return self

    def store_url(self) -> str | None:
        """The store's URL, read in this process: it never passes through Ray (whose actor
        arguments any holder of the cluster token can read)."""
        if self.store_state_dir is None:
            return None
        from crucible_ray.settings import load_settings

        settings = load_settings({"state_dir": self.store_state_dir})
        if self.store_needs_database_url and settings.database_url is None:
            raise RuntimeError("CRUCIBLE_DATABASE_URL is not set where the dispatcher runs")
        return settings.db_url

    @property
    def admission_limit(self) -> int:
        return self.max_pending or 2 * self.max_actors * self.slots_per_actor

    @property
    def user_admission_limit(self) -> int:
        return min(self.max_pending_per_user or self.admission_limit, self.admission_limit)
