"""A metric's busiest groups, a series each, in one answer.

The groups are ranked by their volume over the whole window (requests, lookups
or rejections: :data:`~.catalogue.VOLUMES`), the top ``limit`` read per bucket in
one more query. Bounds: at most ``metrics_grouped_max_series`` series of at most
``metrics_series_max_points`` points. Visibility is the single series' (operators
for platform-wide metrics; a tenant's own rows for tenant data).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform_dashboard.series import repository
from xynergy.platform_dashboard.series.catalogue import GROUP_COLUMNS, VOLUMES, Filter
from xynergy.platform_dashboard.series.schemas import GroupedSeries, GroupSeries
from xynergy.platform_dashboard.series.service import (
    SeriesQuery,
    metric_spec,
    minute_time,
    series_points,
    series_window,
    visible_rows,
)

__all__ = ["read_grouped"]

# The public name of each grouped column (a row's tenant_id is the API's tenant).
_PUBLIC_NAMES = {"tenant_id": "tenant"}


async def read_grouped(
    session: AsyncSession,
    *,
    auth: AuthContext,
    query: SeriesQuery,
    group_by: Filter,
    limit: int | None,
    settings: Settings,
    now: datetime,
) -> GroupedSeries:
    """The ``limit`` busiest groups' series of the metric over the window."""
    spec = metric_spec(query)
    if group_by not in spec.filters:
        raise ValidationFailed(
            f"{query.metric} cannot be grouped by {group_by} "
            f"(it takes: {', '.join(sorted(spec.filters))})."
        )
    most = settings.metrics_grouped_max_series
    if limit is not None and limit > most:
        raise ValidationFailed(f"limit is at most {most} series.")
    wanted = limit if limit is not None else most
    window = series_window(query, settings, now)
    where, tenant = await visible_rows(session, auth=auth, query=query, spec=spec)
    groups = GROUP_COLUMNS[group_by]
    # One more than wanted: whether there are more groups than shown.
    ranked = await repository.group_totals(
        session,
        spec.table,
        groups=groups,
        volume=VOLUMES[spec.table],
        sums=(),
        first_minute=window.first_minute,
        end_minute=window.end_minute,
        where=where,
        limit=wanted + 1,
    )
    shown = ranked[:wanted]
    sums = await repository.grouped_bucket_sums(
        session,
        spec,
        groups=groups,
        keys=[key for key, _volume, _sums in shown],
        first_minute=window.first_minute,
        step_minutes=window.step_minutes,
        points=window.points,
        where=where,
    )
    names = [_PUBLIC_NAMES.get(name, name) for name in groups]
    series = [
        GroupSeries(
            group=dict(zip(names, key, strict=True)),
            volume=volume,
            points=series_points(spec, window, sums.get(key, {})),
        )
        for key, volume, _sums in shown
    ]
    return GroupedSeries(
        metric=query.metric,
        unit=spec.unit,
        group_by=group_by,
        from_=minute_time(window.first_minute),
        to=minute_time(window.end_minute),
        step=window.step_seconds,
        scope="tenant" if tenant is not None else "platform",
        tenant=tenant,
        series=series,
        more=len(ranked) > wanted,
    )
