"""Reading a metric series: the window's checks, who may see what, and the points.

Bounds: ``to - from`` at most ``metrics_series_max_days``; at most
``metrics_series_max_points`` buckets, so ``step`` is at least the range over
that (the default step is the smallest allowed, and never under a minute).

Visibility: tenant-scoped metrics (AI use) of a tenant's key show that tenant's
rows only; another tenant named in ``tenant`` is a 404, as everywhere. Traffic
and cache metrics are the whole platform's (every tenant's requests together),
so only an operator key reads them: an ``admin`` key, or ``metrics:read`` on the
operator tenant. An operator sees every tenant's AI rows summed, or one tenant's
with ``tenant`` (or the tenant an admin key acts for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.operator import is_operator, visible_tenant
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, ValidationFailed
from xynergy.platform_dashboard.series import repository
from xynergy.platform_dashboard.series.catalogue import FILTER_COLUMNS, METRICS, Filter, MetricSpec
from xynergy.platform_dashboard.series.schemas import MetricSeries, SeriesPoint

__all__ = [
    "SeriesQuery",
    "Window",
    "metric_spec",
    "minute_time",
    "read_series",
    "series_points",
    "series_window",
    "visible_rows",
]

_MINUTE = 60
_DEFAULT_RANGE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """What the caller asked for, as parsed from the query string."""

    metric: str
    start: datetime | None
    end: datetime | None
    step: int | None
    filters: dict[Filter, str]


@dataclass(frozen=True, slots=True)
class Window:
    """Buckets of ``step_minutes`` from ``first_minute``: ``points`` of them."""

    first_minute: int
    step_minutes: int
    points: int

    @property
    def end_minute(self) -> int:
        """The minute after the last bucket."""
        return self.first_minute + self.points * self.step_minutes

    @property
    def step_seconds(self) -> int:
        return self.step_minutes * _MINUTE


def minute_time(minute: int) -> datetime:
    """The UTC time a minute number (minutes since the epoch) starts at."""
    return datetime.fromtimestamp(minute * _MINUTE, UTC)


def series_points(
    spec: MetricSpec, window: Window, buckets: Mapping[int, list[int]]
) -> list[SeriesPoint]:
    """One point per bucket of the window: the metric read from the bucket's sums (a
    bucket with no rows reads as zeros)."""
    zeros = [0] * len(spec.sums)
    return [
        SeriesPoint(
            t=minute_time(window.first_minute + index * window.step_minutes),
            value=spec.read(buckets.get(index, zeros)),
        )
        for index in range(window.points)
    ]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def series_window(query: SeriesQuery, settings: Settings, now: datetime) -> Window:
    end = _utc(query.end) if query.end is not None else now
    start = _utc(query.start) if query.start is not None else end - _DEFAULT_RANGE
    if start >= end:
        raise ValidationFailed("from must be before to.")
    span = (end - start).total_seconds()
    max_days = settings.metrics_series_max_days
    if span > max_days * 86_400:
        raise ValidationFailed(f"The range from..to is longer than {max_days} days.")
    first_minute = math.floor(start.timestamp() / _MINUTE)
    minutes = math.ceil(end.timestamp() / _MINUTE) - first_minute
    max_points = settings.metrics_series_max_points
    smallest_step = max(1, math.ceil(minutes / max_points)) * _MINUTE
    step = query.step if query.step is not None else smallest_step
    if step % _MINUTE:
        raise ValidationFailed("step must be a whole number of minutes (in seconds: 60, 300...).")
    if step < smallest_step:
        raise ValidationFailed(
            f"step {step} gives more than {max_points} points over this range: "
            f"use a step of at least {smallest_step} seconds."
        )
    step_minutes = step // _MINUTE
    return Window(first_minute, step_minutes, math.ceil(minutes / step_minutes))


def metric_spec(query: SeriesQuery) -> MetricSpec:
    """The catalogue's entry for the query's metric, its filters checked."""
    spec = METRICS.get(query.metric)
    if spec is None:
        raise ValidationFailed(
            f"Unknown metric {query.metric!r}; known: {', '.join(sorted(METRICS))}."
        )
    unusable = sorted(set(query.filters) - spec.filters)
    if unusable:
        raise ValidationFailed(
            f"{', '.join(unusable)} does not apply to {query.metric} "
            f"(it takes: {', '.join(sorted(spec.filters)) or 'no filter'})."
        )
    return spec


async def visible_rows(
    session: AsyncSession, *, auth: AuthContext, query: SeriesQuery, spec: MetricSpec
) -> tuple[list[ColumnElement[bool]], str | None]:
    """The conditions that keep the caller to the rows it may see and asked for, and
    the tenant they are narrowed to (None: every tenant's, or not tenant data)."""
    operator = await is_operator(session, auth)
    filters: dict[Filter, str] = {k: v for k, v in query.filters.items() if k != "tenant"}
    tenant: str | None = None
    if spec.tenant_scoped:
        tenant = await visible_tenant(session, auth, query.filters.get("tenant"), operator=operator)
        if tenant is not None:
            filters["tenant"] = tenant
    elif not operator:
        raise Forbidden(
            f"{query.metric} covers the whole platform's traffic: it needs an operator key "
            "(admin, or metrics:read on the operator tenant)."
        )
    where = [spec.table.c[FILTER_COLUMNS[name]] == value for name, value in filters.items()]
    return where, tenant


async def read_series(
    session: AsyncSession,
    *,
    auth: AuthContext,
    query: SeriesQuery,
    settings: Settings,
    now: datetime,
) -> MetricSeries:
    """The metric's points over the window, summed over every replica's rows."""
    spec = metric_spec(query)
    window = series_window(query, settings, now)
    where, tenant = await visible_rows(session, auth=auth, query=query, spec=spec)
    sums = await repository.bucket_sums(
        session,
        spec,
        first_minute=window.first_minute,
        step_minutes=window.step_minutes,
        points=window.points,
        where=where,
    )
    return MetricSeries(
        metric=query.metric,
        unit=spec.unit,
        from_=minute_time(window.first_minute),
        to=minute_time(window.end_minute),
        step=window.step_seconds,
        scope="tenant" if tenant is not None else "platform",
        tenant=tenant,
        service=query.filters.get("service"),
        route=query.filters.get("route"),
        rate_class=query.filters.get("rate_class"),
        namespace=query.filters.get("namespace"),
        model=query.filters.get("model"),
        points=series_points(spec, window, sums),
    )
