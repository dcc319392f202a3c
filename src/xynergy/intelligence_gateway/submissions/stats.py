"""Submission counts by kind, status, source and day: one ``GROUP BY`` each, cached.

Four statements on every cache miss. Kind and status are read from the
``(tenant_id, kind|status, created_at, id)`` indexes alone, one range per known
value; days from ``(tenant_id, created_day)``. No index covers a windowed count
by source, so that one reads the rows in the window: the slowest of the four
(an index on ``(tenant_id, source, created_at)`` would make it index-only).
``total`` is the sum of the kind counts, so it costs no fifth statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.models import Submission
from xynergy.intelligence_gateway.submissions.admin_repository import SubmissionAdminRepository
from xynergy.intelligence_gateway.submissions.admin_schemas import (
    DayCount,
    Stats,
    SubmissionKind,
    SubmissionStatus,
)
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform.logging import get_logger

__all__ = [
    "CACHE_NAMESPACE",
    "NO_SOURCE",
    "StatsQuery",
    "compute_stats",
    "get_stats",
    "invalidate_stats_after_commit",
    "stats_query",
    "stats_tag",
]

log = get_logger(__name__)

CACHE_NAMESPACE = "intake-stats"
# The key submissions without a source are counted under in ``by_source``.
NO_SOURCE = ""
_ONE_DAY = timedelta(days=1)
# Every stored row has one of these (the intake and status changes write no others).
KINDS: tuple[str, ...] = get_args(SubmissionKind)
STATUSES: tuple[str, ...] = get_args(SubmissionStatus)
# Bumped when the cached shape changes, so old entries are never read back.
_CACHE_SHAPE = 1


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """A checked stats request: whole UTC days ``since``..``until`` and the bounds."""

    since: date
    until: date
    top_sources: int

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the window."""
        return datetime.combine(self.until, time.min, UTC) + _ONE_DAY

    def cache_parts(self) -> list[Any]:
        return [_CACHE_SHAPE, self.since.isoformat(), self.until.isoformat(), self.top_sources]


def stats_query(
    *,
    since: date | None,
    until: date | None,
    top_sources: int,
    sources_max: int,
    intake: IntakeSettings,
    today: date,
) -> StatsQuery:
    """The window asked for, defaulting to the longest allowed one ending today."""
    last = until or today
    if last >= date.max:
        raise ValidationFailed("until is out of range.")
    try:
        first = since or last - timedelta(days=intake.stats_max_days - 1)
    except OverflowError:
        first = date.min
    if first > last:
        raise ValidationFailed("since must be on or before until.")
    if (last - first).days + 1 > intake.stats_max_days:
        raise ValidationFailed(f"The window may span at most {intake.stats_max_days} days.")
    if top_sources > sources_max:
        raise ValidationFailed(f"sources must be at most {sources_max}.")
    return StatsQuery(since=first, until=last, top_sources=top_sources)


def stats_tag(cache: PlatformCache, tenant_id: str) -> str:
    """The tag of every cached stats answer of ``tenant_id``."""
    return cache.tag(CACHE_NAMESPACE, tenant_id)


def invalidate_stats_after_commit(
    session: AsyncSession, cache: PlatformCache, tenant_id: str
) -> None:
    """Drop ``tenant_id``'s cached stats once ``session`` commits (before the TTL would)."""
    tag = stats_tag(cache, tenant_id)

    async def invalidate() -> None:
        # The write is committed by now: a missed invalidation is bounded by the TTL.
        try:
            await cache.invalidate(tag)
        except Exception as exc:
            log.warning("intake.stats_invalidation_failed", tenant_id=tenant_id, error=repr(exc))

    on_commit(session, invalidate)


async def compute_stats(session: AsyncSession, *, tenant_id: str, query: StatsQuery) -> Stats:
    """The counts, straight from the database: four statements."""
    repository = SubmissionAdminRepository(session)
    start, end = query.start, query.end
    by_kind = await repository.count_by(
        Submission.kind, KINDS, tenant_id=tenant_id, since=start, until=end
    )
    by_status = await repository.count_by(
        Submission.status, STATUSES, tenant_id=tenant_id, since=start, until=end
    )
    sources = await repository.count_by_source(
        tenant_id=tenant_id, since=start, until=end, limit=query.top_sources
    )
    days = await repository.count_by_day(tenant_id=tenant_id, first=query.since, last=query.until)
    return Stats(
        since=query.since,
        until=query.until,
        total=sum(by_kind.values()),
        by_kind=by_kind,
        by_status=by_status,
        by_source={(source if source is not None else NO_SOURCE): n for source, n in sources},
        by_day=[DayCount(day=day, count=n) for day, n in days],
    )


async def get_stats(
    session: AsyncSession,
    *,
    tenant_id: str,
    query: StatsQuery,
    intake: IntakeSettings,
    cache: PlatformCache,
) -> Stats:
    """The counts, from the cache for ``stats_cache_ttl_seconds`` after each computation."""

    async def compute() -> dict[str, Any]:
        stats = await compute_stats(session, tenant_id=tenant_id, query=query)
        return stats.model_dump(mode="json")

    value = await cache.get_or_compute(
        namespace=CACHE_NAMESPACE,
        tenant_id=tenant_id,
        parts=query.cache_parts(),
        compute=compute,
        tags=[stats_tag(cache, tenant_id)],
        ttl=intake.stats_cache_ttl_seconds,
    )
    return Stats.model_validate(value)
