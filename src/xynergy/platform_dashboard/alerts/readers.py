"""The value each kind of rule watches, read in a bounded way.

Rates and latency read the last ``window_minutes`` of the per-minute rollups
(an index range on ``minute``, one aggregate row); spend sums the AI rollups'
cost since the start of the UTC day or month (the ``(tenant_id, minute)`` index
for a tenant's rule); budget use is the AI Routing Engine's spend report (it
keeps the budgets; see budget.py); breakers, memory, file descriptors and disk are read in
this process (the replica that runs the tick). ``None``: no data (no traffic
in the window): the rule keeps its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.logging import get_logger
from xynergy.platform.resources import (
    disk_use,
    file_descriptor_limit,
    memory_limit_bytes,
    open_file_descriptors,
    resident_memory_bytes,
)
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS, percentile_ms
from xynergy.platform.rollups.models import AI_ROLLUPS, CACHE_ROLLUPS, REQUEST_ROLLUPS
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.alerts.budget import budget_percent
from xynergy.platform_dashboard.alerts.models import AlertRule

__all__ = ["fires", "read_budgets", "read_value"]

log = get_logger(__name__)

_NANOS_PER_USD = 1e9


def fires(rule: AlertRule, value: float) -> bool:
    """Whether ``value`` breaks the rule: under the target for cache hit rates, over otherwise."""
    if rule.kind == "cache_hit_rate":
        return value < rule.threshold
    if rule.kind == "breaker_open":
        return value >= 1.0
    return value > rule.threshold


def _minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


async def _sums(
    session: AsyncSession,
    columns: Sequence[ColumnElement[int]],
    where: Sequence[ColumnElement[bool]],
) -> list[int]:
    query = select(*(func.coalesce(func.sum(column), 0) for column in columns)).where(*where)
    row = (await session.execute(query)).one()
    # SUM of a BIGINT is NUMERIC on PostgreSQL: int() every value.
    return [int(value) for value in row]


async def _spend(session: AsyncSession, rule: AlertRule, now: datetime) -> float:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if rule.period == "month":
        start = start.replace(day=1)
    table = AI_ROLLUPS.c
    where: list[ColumnElement[bool]] = [table.minute >= _minute(start)]
    if not rule.platform_wide:
        where.append(table.tenant_id == rule.tenant_id)
    [nanos] = await _sums(session, [table.cost_nanos], where)
    return nanos / _NANOS_PER_USD


async def _requests(session: AsyncSession, rule: AlertRule, now: datetime) -> list[int]:
    table = REQUEST_ROLLUPS.c
    where: list[ColumnElement[bool]] = [table.minute >= _minute(now) - rule.window_minutes]
    if rule.target:
        where.append(table.service == rule.target)
    if rule.kind == "error_rate":
        return await _sums(session, [table.requests, table.errors_5xx], where)
    return await _sums(session, [table[name] for name in BUCKET_COLUMNS], where)


async def _cache_hit_percent(session: AsyncSession, rule: AlertRule, now: datetime) -> float | None:
    table = CACHE_ROLLUPS.c
    where: list[ColumnElement[bool]] = [table.minute >= _minute(now) - rule.window_minutes]
    if rule.target:
        where.append(table.namespace == rule.target)
    hits, misses = await _sums(session, [table.hits, table.misses], where)
    return 100.0 * hits / (hits + misses) if hits + misses else None


def _memory_percent() -> float | None:
    # Against the container's limit when there is one (what the OOM killer uses), as
    # the Prometheus rule in deploy/prometheus/alerts.yml does.
    rss, limit = resident_memory_bytes(), memory_limit_bytes()
    return 100.0 * rss / limit if rss is not None and limit else None


def _fd_percent() -> float | None:
    used, limit = open_file_descriptors(), file_descriptor_limit()
    return 100.0 * used / limit if used is not None and limit else None


async def read_budgets(platform: Platform, tenants: Iterable[str]) -> dict[str, float]:
    """Each tenant's budget use, read from the AI Routing Engine before the evaluator's
    transaction opens: a call to another service never runs while rule rows are locked.
    A tenant without a budget, or whose report could not be read, is left out."""
    readings: dict[str, float] = {}
    for tenant_id in tenants:
        try:
            percent = await budget_percent(platform, tenant_id)
        except Exception:
            log.warning("alert.budget_read_failed", tenant_id=tenant_id, exc_info=True)
            continue
        if percent is not None:
            readings[tenant_id] = percent
    return readings


async def read_value(
    session: AsyncSession,
    platform: Platform,
    rule: AlertRule,
    now: datetime,
    budgets: Mapping[str, float],
) -> float | None:
    """The current value of what ``rule`` watches, or None without data."""
    if rule.kind == "spend":
        return await _spend(session, rule, now)
    if rule.kind == "budget_percent":
        return budgets.get(rule.tenant_id)
    if rule.kind == "error_rate":
        requests, errors = await _requests(session, rule, now)
        return 100.0 * errors / requests if requests else None
    if rule.kind == "latency_p99":
        return percentile_ms(await _requests(session, rule, now), 0.99)
    if rule.kind == "cache_hit_rate":
        return await _cache_hit_percent(session, rule, now)
    if rule.kind == "breaker_open":
        state = await platform.breakers.state(rule.target or "")
        return 1.0 if state == "opened" else 0.0
    if rule.kind == "memory":
        return _memory_percent()
    if rule.kind == "file_descriptors":
        return _fd_percent()
    if rule.kind == "disk":
        use = disk_use(platform.settings.data_dir)
        return use.percent if use is not None else None
    return None
