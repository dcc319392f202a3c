"""All SQL of performance analytics."""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.campaigns.schemas import CampaignStatus
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
            # One row per status, and statuses are a fixed life cycle.
            .limit(len(get_args(CampaignStatus)))
        )
        rows = (await self.session.execute(statement)).all()
        return {str(status): int(count) for status, count in rows}
