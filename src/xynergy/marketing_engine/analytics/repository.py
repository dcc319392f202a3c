"""All SQL of performance analytics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.models import Campaign

__all__ = ["AnalyticsRepository"]


class AnalyticsRepository:
    """Aggregates over this service's own tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def campaign_counts(self, *, tenant_id: str, since: datetime) -> dict[str, int]:
        """Campaigns of ``tenant_id`` changed at or after ``since``, counted per status."""
        statement = (
            select(Campaign.status, func.count())
            .where(Campaign.tenant_id == tenant_id, Campaign.updated_at >= since)
            .group_by(Campaign.status)
        )
        # No LIMIT needed: one row per distinct status, and statuses are a fixed life cycle.
        rows = (await self.session.execute(statement)).all()
        return {str(status): int(count) for status, count in rows}
