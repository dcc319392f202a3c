"""Exact counts of a tenant's runs per status, for the dashboard's polled figures.

One grouped COUNT, answered from ``runtime_runs``' (tenant_id, status, created_at)
index: at most one row per known status comes back, however many runs exist, so
polling it costs an index range per status, never rows streamed to be counted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.system_runtime.models import RunRecord
from xynergy.system_runtime.runs.schemas import RUN_STATUSES, RunCounts

__all__ = ["count_runs"]


async def count_runs(
    session: AsyncSession,
    *,
    tenant_id: str,
    definition: str | None = None,
    since: datetime | None = None,
) -> RunCounts:
    """How many of the tenant's runs are in each status (optionally of one definition,
    created at or after ``since``)."""
    query = (
        select(RunRecord.status, func.count())
        # Named statuses only: the index is walked per status, and the LIMIT below
        # can never cut off a known one.
        .where(RunRecord.tenant_id == tenant_id, RunRecord.status.in_(RUN_STATUSES))
        .group_by(RunRecord.status)
        .limit(len(RUN_STATUSES))
    )
    if definition is not None:
        query = query.where(RunRecord.definition_name == definition)
    if since is not None:
        query = query.where(RunRecord.created_at >= since)
    counted = {status: 0 for status in RUN_STATUSES}
    for status, number in await session.execute(query):
        counted[status] = number
    return RunCounts(
        tenant_id=tenant_id,
        definition=definition,
        since=since,
        total=sum(counted.values()),
        **counted,
    )
