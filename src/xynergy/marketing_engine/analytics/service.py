"""Performance analytics: four sources fetched concurrently, one cached answer.

Caching: the whole answer is cached per tenant, window and the set of sources the
key may read (two keys of one tenant with different scopes never share an
answer) for ``analytics_cache_ttl_seconds``. An answer with an *unavailable*
source is served but not stored, so an outage never pins a partial answer for
the full TTL; the next request tries again (the breaker keeps a down source
cheap to retry). *Forbidden* and *rejected* sections are stored: they follow
from the key and the query, not from an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.marketing_engine.analytics.schemas import (
    PerformanceReport,
    SourceName,
    SourceState,
)
from xynergy.marketing_engine.analytics.sources import (
    SOURCE_SCOPES,
    SourceContext,
    Window,
    fetch_ai,
    fetch_campaigns,
    fetch_content,
    fetch_keywords,
)
from xynergy.marketing_engine.clients import DependencyError
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import Forbidden, UpstreamTimeout, UpstreamUnavailable
from xynergy.platform.logging import get_logger
from xynergy.platform.services import ServiceClient

__all__ = ["ANALYTICS_NAMESPACE", "performance_report", "window_ending"]

ANALYTICS_NAMESPACE = "marketing-analytics"

_FETCHERS: dict[SourceName, Callable[[SourceContext], Awaitable[BaseModel]]] = {
    "content": fetch_content,
    "keywords": fetch_keywords,
    "campaigns": fetch_campaigns,
    "ai": fetch_ai,
}
_REFUSED = frozenset({HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN})
_TRANSIENT = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS})

log = get_logger(__name__)


class _Uncacheable(Exception):
    """Carries an answer out of the cache's computation without it being stored."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("partial analytics answer")
        self.report = report


def window_ending(today: date, days: int) -> Window:
    """The ``days`` UTC days ending with ``today``."""
    return Window(days=days, since=today - timedelta(days=days - 1), until=today)


async def performance_report(
    *,
    caller: AuthContext,
    window: Window,
    marketing: MarketingSettings,
    services: ServiceClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: PlatformCache,
) -> PerformanceReport:
    """The caller's tenant's performance over ``window``, cached, partial if a source fails."""
    readable = sorted(name for name, scopes in SOURCE_SCOPES.items() if caller.allows(*scopes))
    context = SourceContext(
        caller=caller,
        window=window,
        services=services,
        sessionmaker=sessionmaker,
        top_movers=marketing.analytics_top_movers,
        trending_windows_days=marketing.analytics_trending_windows_days,
    )

    async def compute() -> dict[str, Any]:
        report = (await _gather(context, frozenset(readable))).model_dump(mode="json")
        if "unavailable" in report["sources"].values():
            raise _Uncacheable(report)
        return report

    try:
        # The window's first day is in the key: after midnight UTC it is a new window.
        payload = await cache.get_or_compute(
            ANALYTICS_NAMESPACE,
            caller.tenant_id,
            [window.days, window.since.isoformat(), readable],
            compute,
            ttl=marketing.analytics_cache_ttl_seconds,
        )
    except _Uncacheable as uncached:
        payload = uncached.report
    return PerformanceReport.model_validate(payload)


async def _gather(context: SourceContext, readable: frozenset[SourceName]) -> PerformanceReport:
    async def run(name: SourceName) -> BaseModel:
        if name not in readable:
            missing = ", ".join(SOURCE_SCOPES[name])
            raise Forbidden(f"This key lacks the scope(s): {missing}.")
        return await _FETCHERS[name](context)

    names = list(_FETCHERS)
    results = await asyncio.gather(*(run(name) for name in names), return_exceptions=True)
    sections: dict[str, Any] = {}
    sources: dict[SourceName, SourceState] = {}
    failures: dict[SourceName, str] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseModel):
            sections[name], sources[name] = result, "ok"
            continue
        if not isinstance(result, Exception):
            raise result  # cancellation: not a source failure
        sources[name], failures[name] = _classify(name, result)
        sections[name] = None
    return PerformanceReport(
        window_days=context.window.days,
        since=context.window.since,
        until=context.window.until,
        generated_at=utcnow(),
        sources=sources,
        failures=failures,
        partial=any(section is None for section in sections.values()),
        **sections,
    )


def _classify(name: SourceName, exc: Exception) -> tuple[SourceState, str]:
    """The marker and the reason for a failed source; never raises."""
    state: SourceState
    if isinstance(exc, Forbidden):
        state, detail = "forbidden", exc.detail
    elif isinstance(exc, DependencyError):
        if exc.status_code in _REFUSED:
            state = "forbidden"
        elif exc.status_code in _TRANSIENT:
            state = "unavailable"
        else:
            state = "rejected"
        detail = exc.detail
    elif isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
        state, detail = "unavailable", exc.detail
    elif isinstance(exc, SQLAlchemyError | OSError):
        state, detail = "unavailable", "The database did not answer."
    else:
        # A malformed answer or a bug: still one source, not the whole answer.
        log.exception("analytics.source_error", source=name)
        return "unavailable", f"The {name} source answered unexpectedly."
    log.warning("analytics.source_failed", source=name, state=state, error=repr(exc))
    return state, detail
