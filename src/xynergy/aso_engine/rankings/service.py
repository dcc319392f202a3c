"""Recording and reading ranking observations; trending keywords.

Functions only flush; the request's unit of work commits. The trending cache of
a tenant is invalidated after that commit, so no replica can recompute from
the old rows in between.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import RankingObservation
from xynergy.aso_engine.rankings.repository import (
    HistoryFilters,
    RankingRepository,
    TrendingQuery,
    encode_history_cursor,
)
from xynergy.aso_engine.rankings.schemas import (
    NOT_RANKED_POSITION,
    Direction,
    Observation,
    TrendingKeyword,
    TrendingKeywords,
)
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import on_commit, unit_of_work
from xynergy.platform.exceptions import NotFound, ValidationFailed

__all__ = [
    "TRENDING_NAMESPACE",
    "keyword_history",
    "record_rankings",
    "trending_keywords_json",
    "trending_tag",
]

TRENDING_NAMESPACE = "trending"
_NO_SUCH_KEYWORD = "No such keyword."


def trending_tag(cache: PlatformCache, tenant_id: str) -> str:
    """The tag every cached trending result of ``tenant_id`` is stored under."""
    return cache.tag(TRENDING_NAMESPACE, tenant_id)


async def record_rankings(
    session: AsyncSession,
    *,
    tenant_id: str,
    observations: list[Observation],
    aso: AsoSettings,
    cache: PlatformCache,
) -> int:
    """Upsert a batch of observations of the tenant's keywords; all or nothing."""
    if len(observations) > aso.rankings_batch_max:
        raise ValidationFailed(f"At most {aso.rankings_batch_max} observations per request.")
    too_long = [i for i, o in enumerate(observations) if o.url and len(o.url) > aso.url_max_chars]
    if too_long:
        raise ValidationFailed(
            f"observations[{too_long[0]}].url is longer than {aso.url_max_chars} characters."
        )
    repository = RankingRepository(session)
    keyword_ids = {o.keyword_id for o in observations}
    owned = await repository.owned_keyword_ids(tenant_id, keyword_ids)
    if owned != keyword_ids:
        # Says neither which ids failed nor why: another tenant's ids stay unconfirmed.
        raise NotFound("One or more keywords do not exist.")
    # One row per key, the last one sent winning: a statement may not update
    # the same row twice.
    latest = {(o.keyword_id, o.engine, o.locale, o.observed_on): o for o in observations}
    now = utcnow()
    await repository.upsert(
        [
            {
                "id": new_id(),
                "tenant_id": tenant_id,
                "keyword_id": o.keyword_id,
                "engine": o.engine,
                "locale": o.locale,
                "position": o.position,
                "url": o.url,
                "observed_on": o.observed_on,
                "created_at": now,
            }
            for o in latest.values()
        ]
    )
    tag = trending_tag(cache, tenant_id)
    on_commit(session, lambda: cache.invalidate(tag))
    return len(latest)


async def keyword_history(
    session: AsyncSession,
    *,
    tenant_id: str,
    keyword_id: str,
    filters: HistoryFilters,
    limit: int,
    after: tuple[date, str] | None,
) -> tuple[list[RankingObservation], str | None]:
    """One page of a keyword's observations, newest first; another tenant's: NotFound."""
    repository = RankingRepository(session)
    if not await repository.keyword_exists(tenant_id=tenant_id, keyword_id=keyword_id):
        raise NotFound(_NO_SUCH_KEYWORD)
    rows = await repository.history_page(
        tenant_id=tenant_id, keyword_id=keyword_id, filters=filters, limit=limit, after=after
    )
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode_history_cursor(page[-1].observed_on, page[-1].id)


async def trending_keywords_json(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    window: int,
    direction: Direction,
    engine: str | None,
    locale: str | None,
    limit: int | None,
    aso: AsoSettings,
    cache: PlatformCache,
) -> str:
    """The tenant's keywords that moved most over ``window`` days, as response JSON.

    Cached per tenant and parameters. A hit opens no database session and
    decodes nothing: the cached text is the response body.
    """
    if window not in aso.trending_windows_days:
        allowed = ", ".join(str(days) for days in aso.trending_windows_days)
        raise ValidationFailed(f"window must be one of: {allowed}.")
    bounded = min(limit or aso.trending_max_results, aso.trending_max_results)
    # The window's start is part of the key: after midnight UTC it is a new window.
    start = datetime.now(UTC).date() - timedelta(days=window)

    async def compute() -> dict[str, Any]:
        query = TrendingQuery(
            start=start,
            improved=direction == "improved",
            limit=bounded,
            not_ranked_position=NOT_RANKED_POSITION,
            engine=engine,
            locale=locale,
        )
        async with unit_of_work(sessionmaker) as session:
            rows = await RankingRepository(session).trending(tenant_id=tenant_id, query=query)
        response = TrendingKeywords(
            window=window,
            direction=direction,
            items=[
                TrendingKeyword(
                    keyword_id=row.keyword_id,
                    phrase=row.phrase,
                    locale=row.locale,
                    engine=row.engine,
                    start_position=_shown(row.start),
                    latest_position=_shown(row.latest),
                    change=int(row.change),
                )
                for row in rows
            ],
        )
        return response.model_dump(mode="json")

    return await cache.get_or_compute_json(
        TRENDING_NAMESPACE,
        tenant_id,
        [window, start.isoformat(), direction, engine, locale, bounded],
        compute,
        tags=[trending_tag(cache, tenant_id)],
    )


def _shown(position: Any) -> int | None:
    value = int(position)
    return None if value >= NOT_RANKED_POSITION else value
