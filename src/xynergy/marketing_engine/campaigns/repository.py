"""All SQL for campaigns and their steps."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.campaigns.schemas import CampaignFilters
from xynergy.marketing_engine.models import Campaign, CampaignStep
from xynergy.platform.pagination import PageParams, keyset_page

__all__ = ["CampaignRepository"]


def _conditions(tenant_id: str, filters: CampaignFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Campaign.tenant_id == tenant_id]
    if filters.status is not None:
        conditions.append(Campaign.status == filters.status)
    if filters.business_type is not None:
        conditions.append(Campaign.business_type == filters.business_type)
    if filters.created_after is not None:
        conditions.append(Campaign.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Campaign.created_at < filters.created_before)
    return conditions


class CampaignRepository:
    """Queries over ``marketing_campaigns`` and their steps; every one is tenant-scoped."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, tenant_id: str, campaign_id: str) -> Campaign | None:
        return await self.session.scalar(
            select(Campaign).where(Campaign.id == campaign_id, Campaign.tenant_id == tenant_id)
        )

    async def steps(
        self, *, tenant_id: str, campaign_id: str, limit: int
    ) -> Sequence[CampaignStep]:
        """The campaign's steps: at most ``limit``, one per step name (unique per campaign)."""
        query = (
            select(CampaignStep)
            .where(CampaignStep.campaign_id == campaign_id, CampaignStep.tenant_id == tenant_id)
            .order_by(CampaignStep.created_at, CampaignStep.name)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def add(self, campaign: Campaign, steps: Sequence[CampaignStep]) -> Campaign:
        self.session.add(campaign)
        await self.session.flush()
        self.session.add_all(steps)
        await self.session.flush()
        return campaign

    async def flush(self) -> None:
        await self.session.flush()

    async def page(
        self, *, tenant_id: str, filters: CampaignFilters, params: PageParams
    ) -> Sequence[Campaign]:
        query = keyset_page(
            select(Campaign).where(*_conditions(tenant_id, filters)),
            created_column=Campaign.created_at,
            id_column=Campaign.id,
            params=params,
        )
        return (await self.session.scalars(query)).all()
