"""Warming the trending cache: the answers tenants ask for most, computed ahead.

Runs at start-up and, through the System Runtime, on its cache-warming schedule
(every ``XYNERGY_RUNTIME_CACHE_WARM_EVERY_HOURS``, once per tick across
replicas), as the review's caching strategy asked. It warms the default query
(no engine, locale or limit) of every configured window and both directions, for
the tenants that recorded rankings within the longest window, at most
``trending_warm_tenants_max`` of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import RankingObservation
from xynergy.aso_engine.rankings.schemas import Direction
from xynergy.aso_engine.rankings.service import trending_keywords_json
from xynergy.platform.cache import PlatformCache, Warmer
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger

__all__ = ["trending_warmer"]

log = get_logger(__name__)


async def _active_tenants(
    sessionmaker: async_sessionmaker[AsyncSession], *, since_days: int, limit: int
) -> list[str]:
    since = datetime.now(UTC).date() - timedelta(days=since_days)
    async with unit_of_work(sessionmaker) as session:
        rows = await session.scalars(
            select(RankingObservation.tenant_id)
            .where(RankingObservation.observed_on >= since)
            .distinct()
            .order_by(RankingObservation.tenant_id)
            .limit(limit)
        )
        return list(rows)


def trending_warmer(sessionmaker: async_sessionmaker[AsyncSession], aso: AsoSettings) -> Warmer:
    """The warming hook of the trending cache, for ``PlatformCache.add_warmer``."""

    async def warm(cache: PlatformCache) -> None:
        if aso.trending_warm_tenants_max == 0 or not aso.trending_windows_days:
            return
        tenants = await _active_tenants(
            sessionmaker,
            since_days=max(aso.trending_windows_days),
            limit=aso.trending_warm_tenants_max,
        )
        for tenant_id in tenants:
            for window in aso.trending_windows_days:
                for direction in get_args(Direction):
                    await trending_keywords_json(
                        sessionmaker,
                        tenant_id=tenant_id,
                        window=window,
                        direction=direction,
                        engine=None,
                        locale=None,
                        limit=None,
                        aso=aso,
                        cache=cache,
                    )
        log.info("aso.trending_warmed", tenants=len(tenants))

    return warm
