"""System Runtime settings, prefix ``XYNERGY_RUNTIME_`` (e.g. ``XYNERGY_RUNTIME_STEPS_MAX``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xynergy.system_runtime.extra_operations import ExtraOperation

__all__ = ["RUN_CODE_VERSION", "RuntimeSettings"]

# The run workflow's replay contract (engine/workflow.py: how DBOS step ids are
# drawn, and the arguments a run is queued with). Bump it when that changes: runs
# recorded by the old code then stay with replicas of the old version instead of
# replaying wrongly. runs-2: a run's first workflow is queued with its start
# (engine/plan.py) as a second argument, which runs-1 code cannot accept; step ids
# are drawn as before, and runs-2 code still executes runs queued with their id only,
# so a runs-2 replica started with XYNERGY_RUNTIME_APPLICATION_VERSION=runs-1 finishes
# what runs-1 replicas left queued or pending.
RUN_CODE_VERSION = "runs-2"


class RuntimeSettings(BaseSettings):
    """Bounds of definitions and runs, and how the DBOS engine is run."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_RUNTIME_", extra="ignore", frozen=True)

    # --- definitions ------------------------------------------------------------------
    steps_max: int = Field(default=50, ge=1, le=500, description="Most steps in one definition.")
    definitions_max_per_tenant: int = Field(
        default=200, ge=1, le=10_000, description="Most workflow definitions (names) per tenant."
    )
    versions_max_per_definition: int = Field(
        default=100, ge=1, le=10_000, description="Most versions kept of one definition."
    )
    definition_max_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=1_048_576,
        description="Largest definition (its JSON), in bytes.",
    )
    mapping_depth_max: int = Field(
        default=8, ge=1, le=32, description="Deepest nesting of a step's input mapping."
    )
    # --- runs -------------------------------------------------------------------------
    max_parallel_steps_default: int = Field(
        default=4, ge=1, le=64, description="Steps of one run running at once, unless defined."
    )
    max_parallel_steps_limit: int = Field(
        default=16, ge=1, le=256, description="Highest max_parallel_steps a definition may ask."
    )
    tenant_concurrency: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Runs of one tenant executing at once across every replica; the others wait "
        "in the tenant's partition of the queue, so one tenant cannot starve another.",
    )
    worker_concurrency: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Runs executing at once on one replica (all tenants).",
    )
    queue_poll_seconds: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="How often each replica looks for queued runs (latency from start to the "
        "first step, against idle database reads).",
    )
    step_timeout_seconds_default: float = Field(
        default=60.0, gt=0, le=3600, description="One attempt of a step, unless defined."
    )
    step_timeout_seconds_max: float = Field(
        default=900.0, gt=0, le=86_400, description="Longest step timeout a definition may ask."
    )
    step_attempts_default: int = Field(
        default=3, ge=1, le=20, description="Attempts of a retryable step failure, unless defined."
    )
    step_attempts_max: int = Field(
        default=10, ge=1, le=100, description="Most attempts a definition may ask."
    )
    retry_base_seconds: float = Field(
        default=0.5,
        gt=0,
        le=600,
        description="First retry delay; doubled per attempt, with full jitter.",
    )
    retry_max_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Longest delay between two attempts."
    )
    wait_seconds_max: float = Field(
        default=30 * 86_400, gt=0, description="Longest durable wait step."
    )
    approval_timeout_seconds_default: float = Field(
        default=7 * 86_400, gt=0, description="How long an approval waits, unless defined."
    )
    approval_timeout_seconds_max: float = Field(
        default=90 * 86_400, gt=0, description="Longest approval wait a definition may ask."
    )
    input_max_bytes: int = Field(
        default=65_536, ge=256, le=1_048_576, description="Largest run input (its JSON), in bytes."
    )
    output_summary_max_chars: int = Field(
        default=2_000,
        ge=64,
        le=100_000,
        description="Longest step output summary shown by GET /api/workflows/{id}.",
    )
    step_output_max_bytes: int = Field(
        default=262_144,
        ge=1024,
        le=16_777_216,
        description="Largest output a step may record (later steps map from it).",
    )
    # --- live progress and metrics ----------------------------------------------------
    live_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Seconds between heartbeats on a quiet WebSocket or SSE progress stream.",
    )
    live_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often a progress stream reads its run's rows, for runs executing on "
        "another replica (on this one, events arrive at once).",
    )
    live_connections_per_tenant: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Open progress streams (WebSocket and SSE) of one tenant on one replica.",
    )
    live_connections_per_process: int = Field(
        default=2_000,
        ge=1,
        le=1_000_000,
        description="Open progress streams (WebSocket and SSE) on one replica, all tenants.",
    )
    live_event_queue_size: int = Field(
        default=256,
        ge=4,
        le=100_000,
        description="Events held for one progress stream; a consumer further behind is "
        "dropped rather than buffered without bound.",
    )
    ws_ticket_ttl_seconds: int = Field(
        default=30,
        ge=1,
        le=300,
        description="Lifetime of a single-use WebSocket ticket from POST /api/ws-tickets.",
    )
    ws_tickets_max_in_process: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Unredeemed WebSocket tickets held in process (without Redis).",
    )
    metrics_refresh_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="How often the queue depth, oldest queued age and per-tenant concurrency "
        "gauges on /metrics are read from the runs table.",
    )
    extra_operations: tuple[ExtraOperation, ...] = Field(
        default=(),
        max_length=200,
        description="Operations of the deployment's own services that steps may call, as a JSON "
        'list of {"name", "service", "method", "path", "scopes", "description"}: for services '
        "beside the platform (and for tests that need a real receiving endpoint). Each service "
        "needs a URL in XYNERGY_SERVICE_URLS; scopes must be known and at least one; names must "
        "not shadow a built-in operation. A refused list stops the start.",
    )
    # --- schedules and triggers ---------------------------------------------------------
    schedules_max_per_tenant: int = Field(
        default=50, ge=1, le=10_000, description="Most workflow schedules per tenant."
    )
    schedules_max_total: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="Most workflow schedules of all tenants together: DBOS's scheduler keeps "
        "one sleeping thread per schedule on every replica (about 28 KiB of memory each).",
    )
    schedule_min_interval_seconds: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description="Shortest time between two fires of a schedule; a cron firing more often "
        "is refused.",
    )
    schedule_poll_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How often each replica looks for new or changed schedules (a pause or a "
        "delete takes effect at once regardless: each fire re-reads its schedule).",
    )
    cache_warm_every_hours: int = Field(
        default=6,
        ge=0,
        le=24,
        description="Run the platform's cache warmers every this many hours, once per tick "
        "across replicas (a DBOS scheduled workflow); 0 turns the schedule off.",
    )
    maintenance_every_hours: int = Field(
        default=1,
        ge=0,
        le=24,
        description="Run the services' maintenance jobs (e.g. the AI Assistant's deletion of "
        "inactive conversations) every this many hours, once per tick across replicas (a DBOS "
        "scheduled workflow); 0 turns the schedule off.",
    )
    trigger_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="One attempt of a service trigger's call."
    )
    trigger_attempts: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Attempts of a service trigger's call on a retryable failure (the caller "
        "waits for the answer, so fewer than a step's).",
    )
    # --- engine -----------------------------------------------------------------------
    application_version: str = Field(
        default=RUN_CODE_VERSION,
        min_length=1,
        max_length=64,
        description="DBOS application version: runs are recovered and dequeued only by "
        "replicas of the same version. Default: the version of the run workflow's code, "
        "which changes only when recorded runs could no longer replay, so an ordinary "
        "upgrade keeps serving the runs the previous version queued.",
    )
    executor_id: str = Field(
        default="local",
        min_length=1,
        max_length=128,
        description="This replica's DBOS executor id: one per replica, stable across its "
        "restarts, so a restarted replica recovers the runs it was executing. Required in "
        "production on PostgreSQL (two replicas sharing 'local' would both recover the same "
        "runs).",
    )
    dbos_schema: str = Field(
        default="xynergy_dbos",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the DBOS system tables.",
    )
    dbos_pool_size: int = Field(
        default=10, ge=2, le=200, description="Connections of DBOS's own system-database pool."
    )
    shutdown_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="At shutdown, this replica stops taking runs from the queue and gives the "
        "runs it is executing this long to finish; the rest stop where they are, unrecorded, "
        "and continue at their first unfinished step when the replica starts again (or on "
        "another replica, by takeover). Keep it under the process manager's stop timeout.",
    )
    # --- takeover of a dead replica's runs (PostgreSQL) ----------------------------------
    takeover_enabled: bool = Field(
        default=True,
        description="On PostgreSQL, a live replica takes over the runs of a replica whose "
        "heartbeat stopped for takeover_grace_seconds: they continue, on any replica, at "
        "their first unfinished step. Off: they wait for a replica with the dead one's "
        "executor id to start. Always off on SQLite (one process).",
    )
    takeover_heartbeat_seconds: float = Field(
        default=5.0,
        ge=0.1,
        le=60,
        description="How often each replica records that it is alive and looks for replicas "
        "that stopped doing so.",
    )
    takeover_grace_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Silence after which a replica counts as dead and its runs are taken "
        "over: longer than any pause of a live replica (its runs would be executed again "
        "elsewhere, each step call with the same Idempotency-Key), at least three "
        "heartbeats.",
    )

    @model_validator(mode="after")
    def _grace_spans_heartbeats(self) -> Self:
        # One late heartbeat must not make a live replica look dead.
        if self.takeover_grace_seconds < 3 * self.takeover_heartbeat_seconds:
            raise ValueError(
                "takeover_grace_seconds must be at least 3 x takeover_heartbeat_seconds"
            )
        return self
