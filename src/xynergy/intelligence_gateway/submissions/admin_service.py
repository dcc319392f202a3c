"""Submission admin operations: filters, listing, status changes.

Functions only flush; the request's unit of work commits.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.models import Submission
from xynergy.intelligence_gateway.submissions.admin_repository import SubmissionAdminRepository
from xynergy.intelligence_gateway.submissions.admin_schemas import (
    SubmissionFilters,
    SubmissionKind,
    SubmissionOut,
    SubmissionStatus,
)
from xynergy.intelligence_gateway.submissions.stats import invalidate_stats_after_commit
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.schemas import Page

__all__ = ["get_submission", "list_submissions", "normalise_filters", "update_status"]

_ONE_DAY = timedelta(days=1)


def _instant(value: date | datetime, field: str, *, end_of_day: bool) -> datetime:
    """A bound as an instant in UTC; a bare date means its whole (UTC) day."""
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        start = datetime.combine(value, time.min, UTC)
        return start + _ONE_DAY if end_of_day else start
    except (OverflowError, ValueError) as exc:
        raise ValidationFailed(f"{field} is out of range.") from exc


def normalise_filters(
    *,
    kind: SubmissionKind | None,
    status: SubmissionStatus | None,
    form_id: str | None,
    source: str | None,
    since: date | datetime | None,
    until: date | datetime | None,
) -> SubmissionFilters:
    """Filters in the one form the queries use: ``since`` inclusive, ``until`` exclusive.

    A date ``until`` includes that whole day; a time ``until`` is the first instant left out.
    """
    start = _instant(since, "since", end_of_day=False) if since is not None else None
    end = _instant(until, "until", end_of_day=True) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise ValidationFailed("since must be before until.")
    return SubmissionFilters(
        kind=kind, status=status, form_id=form_id, source=source, since=start, until=end
    )


async def list_submissions(
    session: AsyncSession, *, tenant_id: str, filters: SubmissionFilters, params: PageParams
) -> Page[SubmissionOut]:
    """One newest-first page of ``tenant_id``'s submissions matching ``filters``."""
    rows = await SubmissionAdminRepository(session).page(
        tenant_id=tenant_id, filters=filters, params=params
    )
    items, cursor = split_page(rows, params, lambda row: (row.created_at, row.id))
    return Page[SubmissionOut](
        items=[SubmissionOut.model_validate(row) for row in items], next_cursor=cursor
    )


async def get_submission(
    session: AsyncSession, *, tenant_id: str, submission_id: str
) -> Submission:
    """A submission of ``tenant_id``; another tenant's id answers NotFound."""
    row = await SubmissionAdminRepository(session).get(
        tenant_id=tenant_id, submission_id=submission_id
    )
    if row is None:
        raise NotFound("No such submission.")
    return row


async def update_status(
    session: AsyncSession,
    *,
    tenant_id: str,
    submission_id: str,
    status: SubmissionStatus,
    cache: PlatformCache,
) -> Submission:
    """Move a submission to ``status`` (any status may follow any other: a reviewer may
    correct a mistake)."""
    row = await get_submission(session, tenant_id=tenant_id, submission_id=submission_id)
    if row.status != status:
        row.status = status
        row.updated_at = utcnow()
        await SubmissionAdminRepository(session).flush()
        invalidate_stats_after_commit(session, cache, tenant_id)
    return row
