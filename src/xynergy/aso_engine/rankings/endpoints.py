"""Rankings endpoints of the ASO Engine: record observations, history, trending."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request, Response

from xynergy.aso_engine.auth import KeywordsReader, KeywordsWriter
from xynergy.aso_engine.rankings import service
from xynergy.aso_engine.rankings.repository import HistoryFilters, decode_history_cursor
from xynergy.aso_engine.rankings.schemas import (
    Direction,
    EngineFilter,
    LocaleFilter,
    ObservationBatch,
    Ranking,
    RecordedRankings,
    TrendingKeywords,
)
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import NotFound
from xynergy.platform.pagination import PageLimit, page_size
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schema_bounds import setting_bounds
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["rankings"])

_CURSOR_MAX_LENGTH = 200
_WINDOW_HARD_MAX_DAYS = 366
_TRENDING_HARD_MAX = 1000


@router.post("/rankings")
@raises(NotFound)
async def record_rankings(
    body: ObservationBatch, request: Request, session: SessionDep, auth: KeywordsWriter
) -> RecordedRankings:
    """Record a batch of ranking observations (same keyword, engine, locale and day: replaced)."""
    recorded = await service.record_rankings(
        session,
        tenant_id=auth.tenant_id,
        observations=body.observations,
        aso=request.app.state.aso,
        cache=request.app.state.platform.cache,
    )
    return RecordedRankings(recorded=recorded)


@router.get("/keywords/trending", response_model=TrendingKeywords)
async def trending_keywords(
    request: Request,
    auth: KeywordsReader,
    window: Annotated[
        int,
        Query(
            ge=1,
            le=_WINDOW_HARD_MAX_DAYS,
            description="Days: one of the configured trending windows.",
            json_schema_extra=setting_bounds(enum="aso.trending_windows_days"),
        ),
    ],
    direction: Direction = "improved",
    engine: Annotated[EngineFilter | None, Query()] = None,
    locale: Annotated[LocaleFilter | None, Query()] = None,
    limit: Annotated[int | None, Query(ge=1, le=_TRENDING_HARD_MAX)] = None,
) -> Response:
    """Keywords whose position improved or worsened most over the window."""
    platform = request.app.state.platform
    body = await service.trending_keywords_json(
        platform.sessionmaker,
        tenant_id=auth.tenant_id,
        window=window,
        direction=direction,
        engine=engine,
        locale=locale,
        limit=limit,
        aso=request.app.state.aso,
        cache=platform.cache,
    )
    # The cached text is the body: validated when it was computed, not again.
    return Response(content=body, media_type="application/json")


@router.get("/keywords/{keyword_id}/rankings")
async def keyword_rankings(
    keyword_id: ResourceId,
    request: Request,
    session: SessionDep,
    auth: KeywordsReader,
    engine: Annotated[EngineFilter | None, Query()] = None,
    locale: Annotated[LocaleFilter | None, Query()] = None,
    since: date | None = None,
    limit: PageLimit = None,
    cursor: Annotated[str | None, Query(max_length=_CURSOR_MAX_LENGTH)] = None,
) -> Page[Ranking]:
    """A keyword's ranking history, newest first, one cursor page at a time."""
    size = page_size(request, limit)
    rows, next_cursor = await service.keyword_history(
        session,
        tenant_id=auth.tenant_id,
        keyword_id=keyword_id,
        filters=HistoryFilters(engine=engine, locale=locale, since=since),
        limit=size,
        after=decode_history_cursor(cursor) if cursor else None,
    )
    return Page[Ranking](items=[Ranking.model_validate(r) for r in rows], next_cursor=next_cursor)
