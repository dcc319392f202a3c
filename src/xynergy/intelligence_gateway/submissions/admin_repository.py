"""All SQL of the submissions admin side; every query is tenant-scoped and bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from xynergy.intelligence_gateway.models import Submission
from xynergy.intelligence_gateway.submissions.admin_schemas import SubmissionFilters
from xynergy.platform.pagination import PageParams, keyset_page

__all__ = ["EXPORT_COLUMNS", "SubmissionAdminRepository"]

# The CSV export's columns, in order; the header row uses their names.
EXPORT_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Submission.id,
    Submission.created_at,
    Submission.form_id,
    Submission.kind,
    Submission.status,
    Submission.email,
    Submission.name,
    Submission.company,
    Submission.website,
    Submission.subject,
    Submission.body,
    Submission.source,
    Submission.utm,
    Submission.spam_reasons,
)


def _conditions(tenant_id: str, filters: SubmissionFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Submission.tenant_id == tenant_id]
    if filters.kind is not None:
        conditions.append(Submission.kind == filters.kind)
    if filters.status is not None:
        conditions.append(Submission.status == filters.status)
    if filters.form_id is not None:
        conditions.append(Submission.form_id == filters.form_id)
    if filters.source is not None:
        conditions.append(Submission.source == filters.source)
    if filters.since is not None:
        conditions.append(Submission.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Submission.created_at < filters.until)
    return conditions


def _window(tenant_id: str, since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [
        Submission.tenant_id == tenant_id,
        Submission.created_at >= since,
        Submission.created_at < until,
    ]


class SubmissionAdminRepository:
    """Reads and status changes over ``intake_submissions``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, tenant_id: str, submission_id: str) -> Submission | None:
        return await self.session.scalar(
            select(Submission).where(
                Submission.id == submission_id, Submission.tenant_id == tenant_id
            )
        )

    async def flush(self) -> None:
        await self.session.flush()

    async def page(
        self, *, tenant_id: str, filters: SubmissionFilters, params: PageParams
    ) -> Sequence[Submission]:
        query = keyset_page(
            select(Submission).where(*_conditions(tenant_id, filters)),
            created_column=Submission.created_at,
            id_column=Submission.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()

    async def export_batch(
        self, *, tenant_id: str, filters: SubmissionFilters, params: PageParams
    ) -> Sequence[Row[Any]]:
        """The export's next rows (plain columns, no ORM objects), newest first."""
        query = keyset_page(
            select(*EXPORT_COLUMNS).where(*_conditions(tenant_id, filters)),
            created_column=Submission.created_at,
            id_column=Submission.id,
            params=params,
        )
        return (await self.session.execute(query)).all()

    # --- stats: one GROUP BY statement per breakdown --------------------------

    async def count_by(
        self,
        column: InstrumentedAttribute[str],
        values: Sequence[str],
        *,
        tenant_id: str,
        since: datetime,
        until: datetime,
    ) -> dict[str, int]:
        """Counts per value of ``column`` (kind or status), among its known ``values``.

        Naming the values lets the ``(tenant_id, column, created_at, id)`` index
        answer with one range per value, reading only the window's entries.
        """
        query = (
            select(column, func.count())
            .where(*_window(tenant_id, since, until), column.in_(values))
            .group_by(column)
            .order_by(column)
            .limit(len(values))
        )
        return {value: int(count) for value, count in await self.session.execute(query)}

    async def count_by_source(
        self, *, tenant_id: str, since: datetime, until: datetime, limit: int
    ) -> list[tuple[str | None, int]]:
        """The ``limit`` most frequent sources with their counts, most first."""
        count = func.count().label("count")
        query = (
            select(Submission.source, count)
            .where(*_window(tenant_id, since, until))
            .group_by(Submission.source)
            .order_by(count.desc(), Submission.source)
            .limit(limit)
        )
        return [(source, int(n)) for source, n in await self.session.execute(query)]

    async def count_by_day(
        self, *, tenant_id: str, first: date, last: date
    ) -> list[tuple[date, int]]:
        """Counts per day from ``first`` to ``last`` inclusive, oldest first (one row a day)."""
        query = (
            select(Submission.created_day, func.count())
            .where(
                Submission.tenant_id == tenant_id,
                Submission.created_day >= first,
                Submission.created_day <= last,
            )
            .group_by(Submission.created_day)
            .order_by(Submission.created_day)
            .limit((last - first).days + 1)
        )
        return [(day, int(n)) for day, n in await self.session.execute(query)]
