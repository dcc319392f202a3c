"""Schedules: the rules of creating, reading, changing and deleting them.

The row (ours) is what tenants list and what every fire re-reads; the DBOS
schedule is what fires. A create writes the row and registers the DBOS schedule
in one transaction (a failed registration writes nothing); a DBOS schedule whose
row is gone removes itself at its next fire.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageParams, created_page_rows, split_page
from xynergy.platform.schemas import Page
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.lookup import find_definition
from xynergy.system_runtime.definitions.spec import DefinitionProblems, check_definition
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.runs.service import _check_input, required_scopes
from xynergy.system_runtime.schedules import firing
from xynergy.system_runtime.schedules.cron import check_cron, check_timezone
from xynergy.system_runtime.schedules.models import ScheduleRecord
from xynergy.system_runtime.schedules.schemas import ScheduleCreate, ScheduleUpdate, ScheduleView

__all__ = [
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "update_schedule",
]

log = get_logger(__name__)


async def _owned(session: AsyncSession, tenant_id: str, schedule_id: str) -> ScheduleRecord:
    schedule = await session.get(ScheduleRecord, schedule_id)
    if schedule is None or schedule.tenant_id != tenant_id:
        raise NotFound("No such workflow schedule.")
    return schedule


def _engine_unavailable(action: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"The workflow engine could not {action} the schedule.")


async def _check_room(session: AsyncSession, settings: RuntimeSettings, tenant_id: str) -> None:
    """Refuse a schedule past the tenant's bound, or past the deployment's (each
    schedule costs every replica a scheduler thread)."""
    tenant_count = await session.scalar(
        select(func.count())
        .select_from(ScheduleRecord)
        .where(ScheduleRecord.tenant_id == tenant_id)
    )
    if (tenant_count or 0) >= settings.schedules_max_per_tenant:
        raise Conflict(
            f"The tenant has {settings.schedules_max_per_tenant} schedules, the most "
            "allowed; delete one first."
        )
    total = await session.scalar(select(func.count()).select_from(ScheduleRecord))
    if (total or 0) >= settings.schedules_max_total:
        log.warning("runtime.schedules_full", limit=settings.schedules_max_total)
        raise Conflict("The platform holds as many schedules as it is configured for.")


async def create_schedule(
    context: RuntimeContext, *, caller: AuthContext, body: ScheduleCreate
) -> ScheduleRecord:
    """Check and store the schedule, then register it with DBOS (both or neither)."""
    settings = context.settings
    zone = check_timezone(body.timezone)
    cron = check_cron(body.cron, zone, min_interval_seconds=settings.schedule_min_interval_seconds)
    async with unit_of_work(context.platform.sessionmaker) as session:
        await _check_room(session, settings, caller.tenant_id)
        found = await find_definition(
            session, tenant_id=caller.tenant_id, name=body.definition, version=body.version
        )
        try:
            check_definition(found.spec, catalogue=context.catalogue, settings=settings)
        except DefinitionProblems as exc:
            raise ValidationFailed(f"The definition cannot run: {exc}") from None
        # Checked now as each fire would check it: a schedule that could never start
        # its run is refused rather than failing every tick.
        missing = sorted(required_scopes(found.spec, context) - caller.scopes)
        if missing and not caller.is_admin:
            raise Forbidden(f"This workflow's steps need scopes the key lacks: {missing}.")
        _check_input(found.spec, body.input, context)
        now = utcnow()
        schedule = ScheduleRecord(
            id=new_id(),
            tenant_id=caller.tenant_id,
            definition_name=found.spec.name,
            definition_version=body.version,
            cron=cron,
            timezone=body.timezone,
            input=body.input,
            status="active",
            key_id=caller.key_id,
            key_tenant_id=caller.key_tenant_id,
            scopes=sorted(caller.scopes),
            fires=0,
            created_at=now,
            updated_at=now,
        )
        session.add(schedule)
        await session.flush()
        try:
            await firing.register_schedule(schedule)
        except Exception as exc:
            log.warning("runtime.schedule_register_failed", error=type(exc).__name__)
            raise _engine_unavailable("register") from None
    return schedule


async def list_schedules(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> Page[ScheduleView]:
    query = select(ScheduleRecord).where(ScheduleRecord.tenant_id == tenant_id)
    rows = await created_page_rows(session, query, ScheduleRecord, params)
    items, cursor = split_page(rows, params, lambda row: (row.created_at, row.id))
    return Page[ScheduleView](
        items=[ScheduleView.model_validate(row) for row in items], next_cursor=cursor
    )


async def get_schedule(session: AsyncSession, *, tenant_id: str, schedule_id: str) -> ScheduleView:
    return ScheduleView.model_validate(await _owned(session, tenant_id, schedule_id))


async def update_schedule(
    context: RuntimeContext, *, tenant_id: str, schedule_id: str, body: ScheduleUpdate
) -> ScheduleRecord:
    """Pause, resume or re-time a schedule; a stopped one (dead key) stays stopped."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        schedule = await _owned(session, tenant_id, schedule_id)
        if schedule.status == "stopped":
            raise Conflict(
                "The schedule stopped because its key no longer works; create it again "
                "with a live key."
            )
        if body.cron is not None or body.timezone is not None:
            timezone = body.timezone or schedule.timezone
            schedule.cron = check_cron(
                body.cron or schedule.cron,
                check_timezone(timezone),
                min_interval_seconds=context.settings.schedule_min_interval_seconds,
            )
            schedule.timezone = timezone
        if body.status is not None:
            schedule.status = body.status
        schedule.updated_at = utcnow()
        await session.flush()
        try:
            await firing.register_schedule(schedule)
            if schedule.status == "paused":
                await firing.pause_schedule(schedule.id)
            else:
                await firing.resume_schedule(schedule.id)
        except Exception as exc:
            log.warning("runtime.schedule_update_failed", error=type(exc).__name__)
            raise _engine_unavailable("update") from None
        return schedule


async def delete_schedule(context: RuntimeContext, *, tenant_id: str, schedule_id: str) -> None:
    async with unit_of_work(context.platform.sessionmaker) as session:
        schedule = await _owned(session, tenant_id, schedule_id)
        await session.delete(schedule)
        await session.flush()
        try:
            await firing.forget_schedule(schedule.id)
        except Exception as exc:
            log.warning("runtime.schedule_delete_failed", error=type(exc).__name__)
            raise _engine_unavailable("delete") from None
