"""Submission admin endpoints: lists, status changes, CSV export and stats."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.submissions import admin_service, stats
from xynergy.intelligence_gateway.submissions.admin_schemas import (
    ID_LENGTH,
    SOURCE_HARD_MAX,
    Stats,
    SubmissionFilters,
    SubmissionKind,
    SubmissionOut,
    SubmissionStatus,
    SubmissionUpdate,
)
from xynergy.intelligence_gateway.submissions.csv_export import export_rows
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router
from xynergy.platform.schema_bounds import setting_bounds
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["submissions"])

IntakeReader = Annotated[AuthContext, Depends(require_scopes("intake:read"))]
IntakeAdmin = Annotated[AuthContext, Depends(require_scopes("intake:admin"))]
Bound = Annotated[
    AwareDatetime | date | None,
    Query(description="A date (a whole UTC day) or a time with its zone."),
]


# Dependencies are async: a plain def would be sent to the thread pool per request.
async def _intake(request: Request) -> IntakeSettings:
    intake: IntakeSettings = request.app.state.intake
    return intake


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.platform.settings
    return settings


async def _cache(request: Request) -> PlatformCache:
    cache: PlatformCache = request.app.state.platform.cache
    return cache


async def _filters(
    kind: Annotated[SubmissionKind | None, Query()] = None,
    status: Annotated[SubmissionStatus | None, Query()] = None,
    form: Annotated[
        str | None,
        Query(
            min_length=ID_LENGTH,
            max_length=ID_LENGTH,
            pattern=r"^[0-9a-f]{32}$",
            description="Only this form's submissions (its id).",
        ),
    ] = None,
    source: Annotated[str | None, Query(max_length=SOURCE_HARD_MAX)] = None,
    since: Bound = None,
    until: Bound = None,
) -> SubmissionFilters:
    return admin_service.normalise_filters(
        kind=kind, status=status, form_id=form, source=source, since=since, until=until
    )


async def _beta_filters(
    status: Annotated[SubmissionStatus | None, Query()] = None,
    form: Annotated[
        str | None,
        Query(min_length=ID_LENGTH, max_length=ID_LENGTH, pattern=r"^[0-9a-f]{32}$"),
    ] = None,
    source: Annotated[str | None, Query(max_length=SOURCE_HARD_MAX)] = None,
    since: Bound = None,
    until: Bound = None,
) -> SubmissionFilters:
    return admin_service.normalise_filters(
        kind="beta", status=status, form_id=form, source=source, since=since, until=until
    )


IntakeDep = Annotated[IntakeSettings, Depends(_intake)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CacheDep = Annotated[PlatformCache, Depends(_cache)]
FiltersDep = Annotated[SubmissionFilters, Depends(_filters)]


@router.get("/submissions")
async def list_submissions(
    session: SessionDep, auth: IntakeReader, filters: FiltersDep, page: PageParamsDep
) -> Page[SubmissionOut]:
    """List submissions, newest first, filtered, one cursor page at a time."""
    return await admin_service.list_submissions(
        session, tenant_id=auth.tenant_id, filters=filters, params=page
    )


@router.get("/beta-applications")
async def list_beta_applications(
    session: SessionDep,
    auth: IntakeReader,
    filters: Annotated[SubmissionFilters, Depends(_beta_filters)],
    page: PageParamsDep,
) -> Page[SubmissionOut]:
    """List beta applications, newest first, one cursor page at a time."""
    return await admin_service.list_submissions(
        session, tenant_id=auth.tenant_id, filters=filters, params=page
    )


# Declared before /submissions/{submission_id}, which would otherwise match it.
@router.get(
    "/submissions/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV, header row first."}},
)
async def export_submissions(
    request: Request, auth: IntakeReader, filters: FiltersDep, intake: IntakeDep
) -> StreamingResponse:
    """Export the submissions matching the list filters as CSV, newest first."""
    body = export_rows(
        request.app.state.platform.sessionmaker,
        tenant_id=auth.tenant_id,
        filters=filters,
        batch_rows=intake.export_batch_rows,
        max_rows=intake.export_max_rows,
    )
    filename = f"submissions-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/submissions/{submission_id}")
async def get_submission(
    submission_id: ResourceId, session: SessionDep, auth: IntakeReader
) -> SubmissionOut:
    """One submission."""
    row = await admin_service.get_submission(
        session, tenant_id=auth.tenant_id, submission_id=submission_id
    )
    return SubmissionOut.model_validate(row)


@router.patch("/submissions/{submission_id}")
async def update_submission(
    submission_id: ResourceId,
    body: SubmissionUpdate,
    session: SessionDep,
    auth: IntakeAdmin,
    cache: CacheDep,
) -> SubmissionOut:
    """Change a submission's status (new, reviewed, accepted, rejected or spam)."""
    row = await admin_service.update_status(
        session,
        tenant_id=auth.tenant_id,
        submission_id=submission_id,
        status=body.status,
        cache=cache,
    )
    return SubmissionOut.model_validate(row)


@router.get("/stats")
async def get_stats(
    session: SessionDep,
    auth: IntakeReader,
    intake: IntakeDep,
    settings: SettingsDep,
    cache: CacheDep,
    since: Annotated[date | None, Query(description="First UTC day counted.")] = None,
    until: Annotated[
        date | None, Query(description="Last UTC day counted (default today).")
    ] = None,
    sources: Annotated[
        int | None,
        Query(
            ge=1,
            description="How many of the most frequent sources to count.",
            json_schema_extra=setting_bounds(maximum="page_size_max"),
        ),
    ] = None,
) -> Stats:
    """Submission counts by kind, status, source and day over a window of whole days.

    The window (``since`` to ``until``, both included) spans at most
    ``XYNERGY_INTAKE_STATS_MAX_DAYS`` days (366 by default); ``since`` defaults to
    the first day of the longest window ending on ``until``.
    """
    query = stats.stats_query(
        since=since,
        until=until,
        top_sources=sources or settings.page_size_default,
        sources_max=settings.page_size_max,
        intake=intake,
        today=utcnow().date(),
    )
    return await stats.get_stats(
        session, tenant_id=auth.tenant_id, query=query, intake=intake, cache=cache
    )
