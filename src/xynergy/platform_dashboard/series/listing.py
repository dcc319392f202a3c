"""Which services, routes and cache namespaces have data in a range, busiest first.

For the dashboard's pickers and tables: one GROUP BY over an index range of the
rollups, ordered by volume, with a LIMIT of at most ``metrics_listing_max_items``.
Traffic and caches are the whole platform's, so only an operator reads them (as
their series). The cache listing adds what this process holds now (entries and
evictions of its in-process copies), which no rollup can sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.operator import is_operator
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, ValidationFailed
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS, percentile_ms
from xynergy.platform.rollups.models import CACHE_ROLLUPS, REQUEST_ROLLUPS
from xynergy.platform_dashboard.series import repository
from xynergy.platform_dashboard.series.catalogue import VOLUMES
from xynergy.platform_dashboard.series.namespaces import namespace_sizes
from xynergy.platform_dashboard.series.repository import GroupKey
from xynergy.platform_dashboard.series.schemas import (
    NamespaceListing,
    NamespaceStats,
    TrafficListing,
    TrafficTotals,
)
from xynergy.platform_dashboard.series.service import SeriesQuery, minute_time, series_window

__all__ = ["list_namespaces", "list_traffic"]

_requests, _cache = REQUEST_ROLLUPS.c, CACHE_ROLLUPS.c
_TRAFFIC_SUMS: tuple[ColumnElement[int], ...] = (
    _requests.errors_5xx,
    _requests.rate_limited,
    *(_requests[name] for name in BUCKET_COLUMNS),
)
_CACHE_SUMS: tuple[ColumnElement[int], ...] = (_cache.hits, _cache.misses, _cache.evictions)


@dataclass(frozen=True, slots=True)
class _Ranked:
    """The busiest groups over a listing's range: ``rows`` holds up to ``wanted`` + 1, so
    one more than wanted says there are more."""

    first: int
    end_minute: int
    wanted: int
    rows: list[tuple[GroupKey, int, list[int]]]

    @property
    def more(self) -> bool:
        return len(self.rows) > self.wanted


async def _ranked(
    session: AsyncSession,
    table: Table,
    *,
    auth: AuthContext,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    settings: Settings,
    now: datetime,
    what: str,
    groups: tuple[str, ...],
    sums: tuple[ColumnElement[int], ...],
    where: Sequence[ColumnElement[bool]] = (),
) -> _Ranked:
    """What every listing shares: an operator only, ``limit`` bounded by the setting, the
    range as a series would read it, then the busiest ``groups`` of ``table`` in it."""
    if not await is_operator(session, auth):
        raise Forbidden(
            f"{what} covers the whole platform: it needs an operator key "
            "(admin, or metrics:read on the operator tenant)."
        )
    most = settings.metrics_listing_max_items
    if limit is not None and limit > most:
        raise ValidationFailed(f"limit is at most {most}.")
    wanted = limit if limit is not None else most
    query = SeriesQuery(metric="", start=start, end=end, step=None, filters={})
    window = series_window(query, settings, now)
    first, end_minute = window.first_minute, window.end_minute
    rows = await repository.group_totals(
        session,
        table,
        groups=groups,
        volume=VOLUMES[table],
        sums=sums,
        first_minute=first,
        end_minute=end_minute,
        where=where,
        limit=wanted + 1,
    )
    return _Ranked(first=first, end_minute=end_minute, wanted=wanted, rows=rows)


async def list_traffic(
    session: AsyncSession,
    *,
    auth: AuthContext,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    service: str | None,
    by_route: bool,
    settings: Settings,
    now: datetime,
) -> TrafficListing:
    """Services (or routes, of one ``service`` if given) by requests over the window."""
    ranked = await _ranked(
        session,
        REQUEST_ROLLUPS,
        auth=auth,
        start=start,
        end=end,
        limit=limit,
        settings=settings,
        now=now,
        what="Traffic",
        groups=("service", "route") if by_route else ("service",),
        sums=_TRAFFIC_SUMS,
        where=[] if service is None else [_requests.service == service],
    )
    items = [
        TrafficTotals(
            service=str(key[0]),
            route=str(key[1]) if by_route else None,
            requests=requests,
            errors_5xx=sums[0],
            rate_limited=sums[1],
            error_rate=sums[0] / requests if requests else None,
            latency_p99_ms=percentile_ms(sums[2:], 0.99),
        )
        for key, requests, sums in ranked.rows[: ranked.wanted]
    ]
    return TrafficListing(
        from_=minute_time(ranked.first),
        to=minute_time(ranked.end_minute),
        items=items,
        more=ranked.more,
    )


async def list_namespaces(
    session: AsyncSession,
    *,
    auth: AuthContext,
    cache: PlatformCache,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    settings: Settings,
    now: datetime,
) -> NamespaceListing:
    """Cache namespaces by lookups over the window, with hit rate, evictions (every
    replica) and this process's entries; then namespaces with entries here only."""
    ranked = await _ranked(
        session,
        CACHE_ROLLUPS,
        auth=auth,
        start=start,
        end=end,
        limit=limit,
        settings=settings,
        now=now,
        what="Cache statistics",
        groups=("namespace",),
        sums=_CACHE_SUMS,
    )
    live = namespace_sizes(cache)
    items = []
    for key, lookups, (hits, misses, evictions) in ranked.rows[: ranked.wanted]:
        namespace = str(key[0])
        here = live.pop(namespace, None)
        items.append(
            NamespaceStats(
                namespace=namespace,
                hits=hits,
                misses=misses,
                hit_rate=hits / lookups if lookups else None,
                evictions=evictions,
                entries=here.entries if here else 0,
                evictions_here=here.evictions if here else 0,
            )
        )
    if not ranked.more:
        # Namespaces held here but not looked up in the range: most entries first.
        for namespace, here in sorted(live.items(), key=lambda item: (-item[1].entries, item[0])):
            if len(items) >= ranked.wanted:
                break
            items.append(
                NamespaceStats(
                    namespace=namespace,
                    hits=0,
                    misses=0,
                    hit_rate=None,
                    evictions=0,
                    entries=here.entries,
                    evictions_here=here.evictions,
                )
            )
    return NamespaceListing(
        from_=minute_time(ranked.first),
        to=minute_time(ranked.end_minute),
        items=items,
        more=ranked.more,
    )
