"""The System Runtime's metrics on ``/metrics``.

From the event bus (this replica's runs, as they happen): run transitions by
status, step latency by operation, retries by operation. From the runs table,
every ``metrics_refresh_seconds`` (every replica's runs, two aggregate queries):
runs by active status, the oldest queued run's age, and per-tenant concurrency.

Labels stay bounded: statuses are a fixed set, operations come from the
catalogue. Tenants never become labels (thousands of them would be as many
series): per-tenant concurrency is summarised as the most running runs of any
one tenant, the number of tenants with a run running, and the number at their
``tenant_concurrency`` limit — enough to see one tenant saturating its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import case, func, select

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine.events import RunEvent, RunEvents
from xynergy.system_runtime.models import RunRecord

__all__ = ["RuntimeMetrics"]

log = get_logger(__name__)

_ACTIVE = ("queued", "running", "waiting")
_STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
# Steps started and not finished yet, on this replica (bounded well above
# worker_concurrency x max_parallel_steps; past it a latency goes unmeasured).
_IN_FLIGHT_MAX = 100_000


class RuntimeMetrics:
    """Observes the bus and refreshes the table's gauges in a named background task."""

    def __init__(self, platform: Platform, settings: RuntimeSettings) -> None:
        metrics = platform.metrics
        self._platform, self._settings = platform, settings
        self.transitions = metrics.service_metric(
            Counter,
            "xynergy_runtime_run_transitions",
            "Runs that started or finished on this replica, by the status they reached.",
            ["status"],
        )
        self.step_seconds = metrics.service_metric(
            Histogram,
            "xynergy_runtime_step_duration_seconds",
            "Time from a step's first attempt to its success or failure, by operation.",
            ["operation", "outcome"],
            buckets=_STEP_BUCKETS,
        )
        self.retries = metrics.service_metric(
            Counter,
            "xynergy_runtime_step_retries",
            "Attempts of a step after its first one, by operation.",
            ["operation"],
        )
        self.runs = metrics.service_metric(
            Gauge,
            "xynergy_runtime_runs",
            "Runs queued, running or waiting (all replicas).",
            ["status"],
        )
        self.oldest_queued = metrics.service_metric(
            Gauge,
            "xynergy_runtime_oldest_queued_run_age_seconds",
            "Age of the oldest queued run (0 when none waits).",
        )
        self.tenant_running_max = metrics.service_metric(
            Gauge,
            "xynergy_runtime_tenant_running_runs_max",
            "Most runs running at once for any one tenant.",
        )
        self.tenants_running = metrics.service_metric(
            Gauge, "xynergy_runtime_tenants_running", "Tenants with at least one run running."
        )
        self.tenants_at_limit = metrics.service_metric(
            Gauge,
            "xynergy_runtime_tenants_at_concurrency_limit",
            "Tenants running as many runs as tenant_concurrency allows (the rest queue).",
        )
        # (run id, step id) -> (operation, monotonic start of its first attempt).
        self._in_flight: dict[tuple[str, str], tuple[str, float]] = {}  # guard: allow XG005 capped
        self._task: asyncio.Task[None] | None = None
        self._unobserve: Callable[[], None] | None = None

    def start(self, events: RunEvents) -> None:
        """Observe ``events`` and start refreshing the gauges."""
        if self._unobserve is None:
            self._unobserve = events.observe(self.observe)
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_forever(), name="runtime-metrics")

    async def stop(self) -> None:
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._in_flight.clear()

    def observe(self, event: RunEvent) -> None:
        """Count one bus event (never blocks, never raises on odd data)."""
        data = event.data
        if event.type == "run.started":
            self.transitions.labels("running").inc()
        elif event.type == "run.finished":
            status = data.get("status")
            if status in ("succeeded", "failed", "cancelled"):
                self.transitions.labels(status).inc()
        elif event.type == "step.started" and "operation" in data:
            self._step_started(event.run_id, str(data.get("step_id")), data)
        elif event.type in ("step.succeeded", "step.failed"):
            started = self._in_flight.pop((event.run_id, str(data.get("step_id"))), None)
            if started is not None:
                operation, since = started
                outcome = "succeeded" if event.type == "step.succeeded" else "failed"
                self.step_seconds.labels(operation, outcome).observe(time.monotonic() - since)

    def _step_started(self, run_id: str, step_id: str, data: dict[str, object]) -> None:
        operation = str(data["operation"])
        attempt = data.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            self.retries.labels(operation).inc()
        key = (run_id, step_id)
        if key not in self._in_flight and len(self._in_flight) < _IN_FLIGHT_MAX:
            self._in_flight[key] = (operation, time.monotonic())

    async def refresh(self) -> None:
        """Read the gauges from the runs table: two aggregate queries."""
        async with unit_of_work(self._platform.sessionmaker) as session:
            by_status = (
                await session.execute(
                    select(RunRecord.status, func.count(), func.min(RunRecord.created_at))
                    .where(RunRecord.status.in_(_ACTIVE))
                    .group_by(RunRecord.status)
                    .limit(len(_ACTIVE))  # one row per active status
                )
            ).all()
            per_tenant = (
                select(func.count().label("running"))
                .where(RunRecord.status == "running")
                .group_by(RunRecord.tenant_id)
                .subquery()
            )
            limit = self._settings.tenant_concurrency
            tenants = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.max(per_tenant.c.running), 0),
                        func.coalesce(
                            func.sum(case((per_tenant.c.running >= limit, 1), else_=0)), 0
                        ),
                    ).select_from(per_tenant)
                )
            ).one()
        counts = {status: 0 for status in _ACTIVE}
        oldest: datetime | None = None
        for status, count, earliest in by_status:
            counts[status] = count
            if status == "queued":
                oldest = earliest
        for status, count in counts.items():
            self.runs.labels(status).set(count)
        age = (utcnow() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        self.oldest_queued.set(max(0.0, age))
        self.tenants_running.set(tenants[0])
        self.tenant_running_max.set(tenants[1])
        self.tenants_at_limit.set(tenants[2])

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                # The gauges keep their last values; the next refresh tries again.
                log.warning("runtime.metrics_refresh_failed", error=type(exc).__name__)
            await asyncio.sleep(self._settings.metrics_refresh_seconds)


def _aware(moment: datetime) -> datetime:
    # The platform stores UTC; a driver may hand an aggregate's value back naive.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
