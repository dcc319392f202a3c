"""Runs API: start, list, count, read, cancel, resume, signal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response
from pydantic import AwareDatetime

from xynergy.platform.auth.operator import visible_tenant
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict, NotFound, UpstreamUnavailable
from xynergy.platform.idempotency import idempotency_key_of
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, raises, rate_limit
from xynergy.platform.schemas import Page, ResourceId
from xynergy.system_runtime.auth import ContextDep, WorkflowsReader, WorkflowsWriter
from xynergy.system_runtime.definitions.spec import DefinitionName
from xynergy.system_runtime.runs import service
from xynergy.system_runtime.runs.counts import count_runs
from xynergy.system_runtime.runs.schemas import (
    RunCounts,
    RunDetail,
    RunFilters,
    RunStart,
    RunStatus,
    RunSummary,
    Signal,
)

__all__ = ["router"]

router = api_router(prefix="/api", tags=["workflows"])


async def _filters(
    status: Annotated[RunStatus | None, Query()] = None,
    definition: Annotated[DefinitionName | None, Query()] = None,
    started_after: Annotated[AwareDatetime | None, Query()] = None,
    started_before: Annotated[AwareDatetime | None, Query()] = None,
) -> RunFilters:
    return RunFilters(
        status=status,
        definition=definition,
        started_after=started_after,
        started_before=started_before,
    )


FiltersDep = Annotated[RunFilters, Depends(_filters)]
TenantParam = Annotated[
    str | None,
    Query(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        description="Operators: another tenant's counts; default: the key's own tenant.",
    ),
]


@router.post("/workflows/start", status_code=202)
@rate_limit("workflow_start")
@raises(Conflict, UpstreamUnavailable)
async def start_workflow(
    body: RunStart, request: Request, auth: WorkflowsWriter, context: ContextDep, response: Response
) -> RunSummary:
    """Start a run of a definition and answer at once; the run executes on a queue.

    The same ``Idempotency-Key`` starts one run: a repeat answers that run.
    """
    run = await service.start_run(
        context, caller=auth, body=body, idempotency_key=idempotency_key_of(request.scope)
    )
    response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/workflows/{run.id}"
    return RunSummary.model_validate(run)


@router.get("/workflows")
async def list_workflows(
    session: SessionDep, auth: WorkflowsReader, filters: FiltersDep, page: PageParamsDep
) -> Page[RunSummary]:
    """The tenant's runs, newest first, one cursor page at a time."""
    return await service.list_runs(session, tenant_id=auth.tenant_id, filters=filters, params=page)


@router.get("/workflow-counts")
@raises(NotFound)
async def count_workflows(
    session: SessionDep,
    auth: WorkflowsReader,
    definition: Annotated[DefinitionName | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query(description="Runs created at or after.")] = None,
    tenant: TenantParam = None,
) -> RunCounts:
    """Exact counts of the tenant's runs per status, optionally of one definition and
    since a time."""
    tenant_id = auth.tenant_id
    if tenant is not None:
        # An operator's read of another tenant, checked as every platform-wide read
        # is (a tenant's key naming another: 404). Unnamed, the key's own tenant:
        # no lookup, since the dashboard polls this.
        await visible_tenant(session, auth, tenant)
        tenant_id = tenant
    return await count_runs(session, tenant_id=tenant_id, definition=definition, since=since)


@router.get("/workflows/{run_id}")
async def get_workflow(
    run_id: ResourceId, session: SessionDep, auth: WorkflowsReader, context: ContextDep
) -> RunDetail:
    """One run: its status, and each step's status, attempts, timings, error and output."""
    return await service.get_run(context, session, tenant_id=auth.tenant_id, run_id=run_id)


@router.post("/workflows/{run_id}/cancel")
@raises(Conflict)
async def cancel_workflow(
    run_id: ResourceId, auth: WorkflowsWriter, context: ContextDep
) -> RunSummary:
    """Stop a queued or running run between steps."""
    run = await service.cancel_run(context, tenant_id=auth.tenant_id, run_id=run_id)
    return RunSummary.model_validate(run)


@router.post("/workflows/{run_id}/resume", status_code=202)
# A resume runs steps again (AI calls included): it costs like a start.
@rate_limit("workflow_start")
@raises(Conflict)
async def resume_workflow(
    run_id: ResourceId, auth: WorkflowsWriter, context: ContextDep
) -> RunSummary:
    """Continue a failed or cancelled run from its first unfinished step; completed
    steps are not run again."""
    run = await service.resume_run(context, tenant_id=auth.tenant_id, run_id=run_id)
    return RunSummary.model_validate(run)


@router.post("/workflows/{run_id}/signal")
@raises(Conflict)
async def signal_workflow(
    run_id: ResourceId, body: Signal, auth: WorkflowsWriter, context: ContextDep
) -> RunSummary:
    """Approve or reject a run's waiting approval step."""
    run = await service.signal_run(context, caller=auth, run_id=run_id, body=body)
    return RunSummary.model_validate(run)
