"""Schedules API: create, list, read, change (pause, resume, cron) and delete."""

from __future__ import annotations

from fastapi import Request, Response

from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict, UpstreamUnavailable
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page, ResourceId
from xynergy.system_runtime.auth import ContextDep, WorkflowsReader, WorkflowsWriter
from xynergy.system_runtime.schedules import service
from xynergy.system_runtime.schedules.schemas import ScheduleCreate, ScheduleUpdate, ScheduleView

__all__ = ["router"]

router = api_router(prefix="/api", tags=["workflow schedules"])


@router.post("/workflow-schedules", status_code=201)
@raises(Conflict, UpstreamUnavailable)
async def create_schedule(
    body: ScheduleCreate,
    request: Request,
    response: Response,
    auth: WorkflowsWriter,
    context: ContextDep,
) -> ScheduleView:
    """Run a definition on a cron schedule, acting with this key while it stays usable.

    The cron is read in ``timezone`` (UTC by default) and may not fire more often
    than the runtime's minimum interval.
    """
    schedule = await service.create_schedule(context, caller=auth, body=body)
    root = request.scope.get("root_path", "")
    response.headers["Location"] = f"{root}/api/workflow-schedules/{schedule.id}"
    return ScheduleView.model_validate(schedule)


@router.get("/workflow-schedules")
async def list_schedules(
    session: SessionDep, auth: WorkflowsReader, page: PageParamsDep
) -> Page[ScheduleView]:
    """The tenant's schedules, newest first, one cursor page at a time."""
    return await service.list_schedules(session, tenant_id=auth.tenant_id, params=page)


@router.get("/workflow-schedules/{schedule_id}")
async def get_schedule(
    schedule_id: ResourceId, session: SessionDep, auth: WorkflowsReader
) -> ScheduleView:
    """One schedule: its cron, status (and why it stopped), and its last fire."""
    return await service.get_schedule(session, tenant_id=auth.tenant_id, schedule_id=schedule_id)


@router.patch("/workflow-schedules/{schedule_id}")
@raises(Conflict, UpstreamUnavailable)
async def update_schedule(
    schedule_id: ResourceId, body: ScheduleUpdate, auth: WorkflowsWriter, context: ContextDep
) -> ScheduleView:
    """Pause or resume a schedule, or change its cron or time zone."""
    schedule = await service.update_schedule(
        context, tenant_id=auth.tenant_id, schedule_id=schedule_id, body=body
    )
    return ScheduleView.model_validate(schedule)


@router.delete("/workflow-schedules/{schedule_id}", status_code=204)
@raises(UpstreamUnavailable)
async def delete_schedule(
    schedule_id: ResourceId, auth: WorkflowsWriter, context: ContextDep
) -> None:
    """Delete a schedule; runs it already started are not affected."""
    await service.delete_schedule(context, tenant_id=auth.tenant_id, schedule_id=schedule_id)
