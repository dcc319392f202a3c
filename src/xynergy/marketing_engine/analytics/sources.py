"""The four sources of performance analytics, each fetched on its own.

Each fetcher returns its section or raises; the service turns a raise into that
source's marker, so one failed source never fails the whole answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.marketing_engine.analytics.repository import AnalyticsRepository
from xynergy.marketing_engine.analytics.schemas import (
    AiSection,
    CampaignsSection,
    ContentSection,
    KeywordMover,
    KeywordsSection,
    SourceName,
)
from xynergy.marketing_engine.clients import AI_ENGINE, ASO_ENGINE, call_json
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.services import ServiceClient

__all__ = [
    "CAMPAIGN_STATUSES",
    "CONTENT_STATUSES",
    "SOURCE_SCOPES",
    "SourceContext",
    "Window",
    "fetch_ai",
    "fetch_campaigns",
    "fetch_content",
    "fetch_keywords",
]

# The ASO Engine's content statuses (part of its API contract): one COUNT call each.
CONTENT_STATUSES: tuple[str, ...] = ("draft", "review", "scheduled", "published", "archived")
# A campaign's life cycle (models.Campaign); listed so every status shows, zero or not.
CAMPAIGN_STATUSES: tuple[str, ...] = ("draft", "approved", "active", "completed", "archived")
# The scope each source needs beyond analytics:read: what its internal call carries.
SOURCE_SCOPES: dict[SourceName, tuple[str, ...]] = {
    "content": ("content:read",),
    "keywords": ("keywords:read",),
    "campaigns": (),
    "ai": ("ai:usage",),
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """``days`` UTC days ending today: ``[since, until]``, both inclusive."""

    days: int
    since: date
    until: date

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What every fetcher needs: who asks, for which window, through what."""

    caller: AuthContext
    window: Window
    services: ServiceClient
    sessionmaker: async_sessionmaker[AsyncSession]
    top_movers: int
    trending_windows_days: tuple[int, ...]


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Every call's result; the first failure is raised once all have finished."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)  # type: ignore[arg-type]


async def fetch_content(context: SourceContext) -> ContentSection:
    """Content pieces changed in the window, per status: one bounded COUNT per status."""
    since = context.window.starts_at.isoformat()

    async def count(status: str) -> int:
        answer = await call_json(
            context.services,
            ASO_ENGINE,
            "GET",
            "/api/content/count",
            caller=context.caller,
            scopes=SOURCE_SCOPES["content"],
            params={"status": status, "updated_since": since},
        )
        return int(answer["count"])

    counts = await _all(count(status) for status in CONTENT_STATUSES)
    return ContentSection(by_status=dict(zip(CONTENT_STATUSES, counts, strict=True)))


async def fetch_keywords(context: SourceContext) -> KeywordsSection:
    """Keywords that improved and declined over the window, and the largest moves.

    The ASO Engine computes movement over a few fixed windows; the closest one to
    the requested window is used and named in the answer.
    """
    days = min(context.trending_windows_days, key=lambda d: (abs(d - context.window.days), d))

    async def trending(direction: str) -> list[dict[str, Any]]:
        answer = await call_json(
            context.services,
            ASO_ENGINE,
            "GET",
            "/api/keywords/trending",
            caller=context.caller,
            scopes=SOURCE_SCOPES["keywords"],
            params={"window": str(days), "direction": direction},
        )
        items: list[dict[str, Any]] = answer["items"]
        return items

    improved, declined = await _all([trending("improved"), trending("worsened")])
    movers = sorted(
        (KeywordMover.model_validate(item) for item in [*improved, *declined]),
        key=lambda mover: (-abs(mover.change), mover.keyword_id, mover.engine, mover.locale),
    )
    return KeywordsSection(
        window_days=days,
        improved=len(improved),
        declined=len(declined),
        top_movers=movers[: context.top_movers],
    )


async def fetch_campaigns(context: SourceContext) -> CampaignsSection:
    """This service's campaigns changed in the window, per status (one GROUP BY)."""
    async with context.sessionmaker() as session:
        found = await AnalyticsRepository(session).campaign_counts(
            tenant_id=context.caller.tenant_id, since=context.window.starts_at
        )
    return CampaignsSection(by_status={status: 0 for status in CAMPAIGN_STATUSES} | found)


async def fetch_ai(context: SourceContext) -> AiSection:
    """AI requests, tokens, spend and cache hit rate from the AI Routing Engine's ledger."""
    answer = await call_json(
        context.services,
        AI_ENGINE,
        "GET",
        "/api/usage",
        caller=context.caller,
        scopes=SOURCE_SCOPES["ai"],
        params={
            "since": context.window.since.isoformat(),
            "until": context.window.until.isoformat(),
        },
    )
    totals = answer["totals"]
    requests, hits = int(totals["requests"]), int(totals["cache_hits"])
    return AiSection(
        requests=requests,
        cache_hits=hits,
        cache_hit_rate=hits / requests if requests else None,
        tokens=int(totals["input_tokens"]) + int(totals["output_tokens"]),
        cost_usd=str(totals["cost_usd"]),
    )
