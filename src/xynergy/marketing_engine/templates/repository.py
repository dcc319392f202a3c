"""All SQL for tenant templates."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.models import CampaignTemplate
from xynergy.platform.pagination import PageParams, keyset_page

__all__ = ["TemplateRepository"]


class TemplateRepository:
    """Queries over ``marketing_templates``; every one is tenant-scoped."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(
        self, *, tenant_id: str, business_type: str, industry: str
    ) -> CampaignTemplate | None:
        query = (
            select(CampaignTemplate)
            .where(
                CampaignTemplate.tenant_id == tenant_id,
                CampaignTemplate.business_type == business_type,
                CampaignTemplate.industry == industry,
            )
            .order_by(CampaignTemplate.version.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def latest_version(self, *, tenant_id: str, business_type: str, industry: str) -> int:
        query = select(func.max(CampaignTemplate.version)).where(
            CampaignTemplate.tenant_id == tenant_id,
            CampaignTemplate.business_type == business_type,
            CampaignTemplate.industry == industry,
        )
        return int(await self.session.scalar(query) or 0)

    async def add(self, template: CampaignTemplate) -> CampaignTemplate:
        self.session.add(template)
        await self.session.flush()
        return template

    async def page_latest(
        self, *, tenant_id: str, params: PageParams
    ) -> Sequence[CampaignTemplate]:
        """The newest-first page of each business type and industry's latest version."""
        newest = (
            select(
                CampaignTemplate.business_type,
                CampaignTemplate.industry,
                func.max(CampaignTemplate.version).label("version"),
            )
            .where(CampaignTemplate.tenant_id == tenant_id)
            .group_by(CampaignTemplate.business_type, CampaignTemplate.industry)
            .subquery()
        )
        query = select(CampaignTemplate).join(
            newest,
            (CampaignTemplate.business_type == newest.c.business_type)
            & (CampaignTemplate.industry == newest.c.industry)
            & (CampaignTemplate.version == newest.c.version),
        )
        query = query.where(CampaignTemplate.tenant_id == tenant_id)
        paged = keyset_page(
            query,
            created_column=CampaignTemplate.created_at,
            id_column=CampaignTemplate.id,
            params=params,
        )
        return (await self.session.scalars(paged)).all()
