"""Warming the template cache: the templates tenants use, resolved ahead.

Runs at start-up and, through the System Runtime, on its cache-warming schedule
(every ``XYNERGY_RUNTIME_CACHE_WARM_EVERY_HOURS``, once per tick across
replicas), as the review's caching strategy asked. A template is cached per
tenant, business type and industry (namespace ``marketing-templates``), both as
the lookup answers it and as campaign generation starts from it. Warming fills
both for the most recently stored templates, then for the pairs of the most
recent campaigns (those that started from a built-in template), at most
``template_warm_max`` pairs in all. It never drafts with AI and never writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.models import Campaign, CampaignTemplate
from xynergy.marketing_engine.templates.lookup import warm_template
from xynergy.platform.cache import PlatformCache, Warmer
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger

__all__ = ["template_warmer"]

log = get_logger(__name__)

_Pair = tuple[str, str, str]  # tenant id, business type, industry


def _recent_pairs(model: Any, limit: int) -> Any:
    # Across tenants on purpose: the warmer serves every tenant, bounded by ``limit``.
    return (
        select(model.tenant_id, model.business_type, model.industry)
        .group_by(model.tenant_id, model.business_type, model.industry)
        .order_by(
            func.max(model.created_at).desc(),
            model.tenant_id,
            model.business_type,
            model.industry,
        )
        .limit(limit)
    )


async def _pairs_to_warm(sessionmaker: async_sessionmaker[AsyncSession], limit: int) -> list[_Pair]:
    pairs: dict[_Pair, None] = {}
    async with unit_of_work(sessionmaker) as session:
        for model in (CampaignTemplate, Campaign):
            if len(pairs) >= limit:
                break
            rows = await session.execute(_recent_pairs(model, limit))
            for tenant_id, business_type, industry in rows:
                pairs.setdefault((tenant_id, business_type, industry), None)
    return list(pairs)[:limit]


def template_warmer(
    sessionmaker: async_sessionmaker[AsyncSession], marketing: MarketingSettings
) -> Warmer:
    """The warming hook of the template cache, for ``PlatformCache.add_warmer``."""

    async def warm(cache: PlatformCache) -> None:
        if marketing.template_warm_max == 0:
            return
        pairs = await _pairs_to_warm(sessionmaker, marketing.template_warm_max)
        warmed = 0
        for tenant_id, business_type, industry in pairs:
            # One short unit of work per pair: no read transaction spans the run.
            async with unit_of_work(sessionmaker) as session:
                warmed += await warm_template(
                    session,
                    cache=cache,
                    tenant_id=tenant_id,
                    business_type=business_type,
                    industry=industry,
                )
        log.info("marketing.templates_warmed", templates=warmed, pairs=len(pairs))

    return warm
