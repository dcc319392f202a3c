"""The DBOS side of schedules: the workflows DBOS's scheduler starts, and their schedules.

Each tenant schedule is a DBOS schedule (``DBOS.apply_schedules``): DBOS keeps it
in its system tables, every replica's scheduler thread watches it, and each tick
enqueues one workflow whose id is derived from (schedule, tick time), so a tick
seen by several replicas still runs once. That workflow starts the run through
``runs.service.start_run`` with an idempotency key of the same (schedule, tick):
a fire re-executed after a crash answers the run it already started.

The platform's cache warmers and the services' maintenance jobs run the same
way, as process-level schedules of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from dbos import DBOS

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.logging import get_logger
from xynergy.platform.tenancy.models import ApiKey
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine.context import current
from xynergy.system_runtime.runs.schemas import RunStart
from xynergy.system_runtime.runs.service import start_run
from xynergy.system_runtime.schedules.models import ScheduleRecord

__all__ = [
    "CACHE_WARM_SCHEDULE",
    "MAINTENANCE_SCHEDULE",
    "apply_process_schedules",
    "dbos_schedule_name",
    "fire_schedule",
    "forget_schedule",
    "pause_schedule",
    "register_schedule",
    "resume_schedule",
    "run_every_minute",
    "run_maintenance",
    "tick_idempotency_key",
    "warm_caches",
]

log = get_logger(__name__)

T = TypeVar("T")

FIRE_WORKFLOW = "xynergy.runtime.schedule_fire"
WARM_WORKFLOW = "xynergy.runtime.cache_warm"
CACHE_WARM_SCHEDULE = "xynergy-cache-warm"
MAINTENANCE_WORKFLOW = "xynergy.runtime.maintenance"
MAINTENANCE_SCHEDULE = "xynergy-maintenance"
EVERY_MINUTE_WORKFLOW = "xynergy.runtime.every_minute"
EVERY_MINUTE_SCHEDULE = "xynergy-every-minute"
_SCHEDULE_PREFIX = "xynergy-schedule-"


def dbos_schedule_name(schedule_id: str) -> str:
    return _SCHEDULE_PREFIX + schedule_id


def tick_idempotency_key(schedule_id: str, scheduled_at: datetime) -> str:
    """The same for every execution of one tick of one schedule."""
    return f"xynergy-schedule-{schedule_id}-{scheduled_at.astimezone(UTC).isoformat()}"


async def _outside_dbos(work: Coroutine[Any, Any, T]) -> T:
    # DBOS refuses to start a workflow from inside a step. The run must be a root
    # workflow of its own anyway (not a child of this tick), so it is started from a
    # fresh context; the step's idempotency key keeps a repeat from starting another.
    return await asyncio.create_task(work, name="schedule-start-run", context=contextvars.Context())


async def _fire(schedule_id: str, scheduled_at: datetime) -> str | None:
    """One tick: the run it started, or None (paused, stopped, gone or failed)."""
    context = current()
    sessions = context.platform.sessionmaker
    caller: AuthContext | None = None
    async with unit_of_work(sessions) as session:
        schedule = await session.get(ScheduleRecord, schedule_id)
        if schedule is None:
            # Deleted, or its creation rolled back after DBOS had it: tidy DBOS's side.
            await forget_schedule(schedule_id)
            return None
        if schedule.status != "active":
            return None
        key = await session.get(ApiKey, schedule.key_id)
        reason = "deleted" if key is None else key.unusable_reason(utcnow())
        if key is None or reason is not None:
            schedule.status = "stopped"
            schedule.stopped_reason = (
                f"The API key that created this schedule is {reason}; the schedule stopped "
                "instead of acting on a dead credential. Create it again with a live key."
            )
            schedule.updated_at = utcnow()
        else:
            # The key's scopes now, within those it had when it created the schedule.
            scopes = frozenset(schedule.scopes) & frozenset(key.scopes)
            caller = AuthContext(
                tenant_id=schedule.tenant_id,
                key_id=schedule.key_id,
                key_tenant_id=schedule.key_tenant_id,
                scopes=scopes,
            )
            body = RunStart(
                definition=schedule.definition_name,
                version=schedule.definition_version,
                input=schedule.input,
            )
    if caller is None:
        log.info("runtime.schedule_stopped", schedule_id=schedule_id, reason=reason)
        await pause_schedule(schedule_id)
        return None
    run_id: str | None = None
    error: str | None = None
    try:
        run = await _outside_dbos(
            start_run(
                context,
                caller=caller,
                body=body,
                idempotency_key=tick_idempotency_key(schedule_id, scheduled_at),
            )
        )
        run_id = run.id
    except XynergyError as exc:
        error = f"{exc.code}: {exc.detail}"
        log.info("runtime.schedule_start_failed", schedule_id=schedule_id, error=exc.code)
    async with unit_of_work(sessions) as session:
        schedule = await session.get(ScheduleRecord, schedule_id)
        if schedule is not None:
            schedule.fires += 1
            schedule.last_fired_at = scheduled_at
            schedule.last_run_id = run_id or schedule.last_run_id
            schedule.last_error = error
    return run_id


@DBOS.workflow(name=FIRE_WORKFLOW)
async def fire_schedule(scheduled_at: datetime, schedule_id: str) -> None:
    """What DBOS starts on each tick of a tenant's schedule (one workflow per tick);
    the run it started is the step's recorded result."""
    # Safe to retry: the run's idempotency key is the tick's. A database hiccup
    # should not lose the tick.
    await DBOS.run_step_async(
        {"name": "schedule.fire", "retries_allowed": True, "max_attempts": 3},
        _fire,
        schedule_id,
        scheduled_at,
    )


async def _warm() -> None:
    await current().platform.cache.warm()


@DBOS.workflow(name=WARM_WORKFLOW)
async def warm_caches(scheduled_at: datetime, _context: Any) -> None:
    """Run the platform's cache warmers: once per tick across every replica."""
    await DBOS.run_step_async({"name": "cache.warm"}, _warm)
    log.info("runtime.caches_warmed", scheduled_at=scheduled_at.isoformat())


def _jobs(kind: str) -> Mapping[str, Callable[[], Awaitable[None]]]:
    platform = current().platform
    return platform.maintenance_jobs if kind == "maintenance" else platform.every_minute_jobs


async def _run_job(kind: str, name: str) -> str | None:
    """One registered job of ``kind``: None, or its failure (logged; the next tick runs
    it again)."""
    job = _jobs(kind).get(name)
    if job is None:
        return None
    try:
        await job()
    except Exception as exc:  # one job failing must not stop the others
        log.warning(f"runtime.{kind}_failed", job=name, error=repr(exc))
        return f"{type(exc).__name__}: {exc}"
    return None


async def _run_jobs(kind: str) -> None:
    # Sorted: a recovered tick replays its steps in the same order.
    for name in sorted(_jobs(kind)):
        await DBOS.run_step_async({"name": f"{kind}.{name}"}, _run_job, kind, name)


@DBOS.workflow(name=MAINTENANCE_WORKFLOW)
async def run_maintenance(scheduled_at: datetime, _context: Any) -> None:
    """Run every registered maintenance job, each a step: once per tick across replicas."""
    await _run_jobs("maintenance")
    log.info("runtime.maintenance_done", scheduled_at=scheduled_at.isoformat())


@DBOS.workflow(name=EVERY_MINUTE_WORKFLOW)
async def run_every_minute(scheduled_at: datetime, _context: Any) -> None:
    """Run every registered minutely job (e.g. alert evaluation), each a step."""
    await _run_jobs("every_minute")


async def register_schedule(schedule: ScheduleRecord) -> None:
    """Create or update the DBOS schedule of ``schedule`` (DBOS keeps a paused one paused)."""
    await DBOS.apply_schedules_async(
        [
            {
                "schedule_name": dbos_schedule_name(schedule.id),
                "workflow_fn": fire_schedule,
                "schedule": schedule.cron,
                "context": schedule.id,
                "cron_timezone": schedule.timezone,
            }
        ]
    )


async def pause_schedule(schedule_id: str) -> None:
    await asyncio.to_thread(DBOS.pause_schedule, dbos_schedule_name(schedule_id))


async def resume_schedule(schedule_id: str) -> None:
    await asyncio.to_thread(DBOS.resume_schedule, dbos_schedule_name(schedule_id))


async def forget_schedule(schedule_id: str) -> None:
    await DBOS.delete_schedule_async(dbos_schedule_name(schedule_id))


def cache_warm_cron(every_hours: int) -> str:
    """Seconds-first cron of an hourly schedule: on the hour, every ``every_hours``."""
    return f"0 0 */{every_hours} * * *"


async def _apply_hourly(name: str, workflow: Callable[..., Any], every_hours: int) -> None:
    if every_hours == 0:
        await DBOS.delete_schedule_async(name)
        return
    await DBOS.apply_schedules_async(
        [{"schedule_name": name, "workflow_fn": workflow, "schedule": cache_warm_cron(every_hours)}]
    )


async def apply_process_schedules(settings: RuntimeSettings) -> None:
    """The process-level schedules (cache warming, maintenance); the same on every
    replica, so applying them at each launch is idempotent."""
    await _apply_hourly(CACHE_WARM_SCHEDULE, warm_caches, settings.cache_warm_every_hours)
    await _apply_hourly(MAINTENANCE_SCHEDULE, run_maintenance, settings.maintenance_every_hours)
    # Seconds-first cron: second 0 of every minute.
    await DBOS.apply_schedules_async(
        [
            {
                "schedule_name": EVERY_MINUTE_SCHEDULE,
                "workflow_fn": run_every_minute,
                "schedule": "0 * * * * *",
            }
        ]
    )
