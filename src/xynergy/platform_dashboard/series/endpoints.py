"""GET /api/metrics/series."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Forbidden, NotFound
from xynergy.platform.routing import api_router, raises
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.series import service
from xynergy.platform_dashboard.series.catalogue import Filter
from xynergy.platform_dashboard.series.schemas import MetricSeries

__all__ = ["router"]

router = api_router(prefix="/api/metrics", tags=["metrics"])

_TENANT_ID = r"^[0-9a-f]{32}$"


@router.get("/series", response_model=MetricSeries, response_model_by_alias=True)
@raises(Forbidden, NotFound)
async def metric_series(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    metric: Annotated[
        str, Query(min_length=1, max_length=64, description="requests, latency_p99, ai_cost_usd...")
    ],
    start: Annotated[
        datetime | None,
        Query(alias="from", description="ISO 8601 or epoch seconds; default: an hour before to."),
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="ISO 8601 or epoch seconds; default: now.")
    ] = None,
    step: Annotated[
        int | None,
        Query(ge=60, le=10 * 365 * 86_400, description="Seconds per point, a multiple of 60."),
    ] = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=64)] = None,
    route: Annotated[
        str | None, Query(max_length=255, description="A route template, e.g. /api/content/{id}.")
    ] = None,
    namespace: Annotated[str | None, Query(max_length=64, description="A cache namespace.")] = None,
    model: Annotated[str | None, Query(max_length=200, description="An AI model.")] = None,
    tenant: Annotated[
        str | None,
        Query(
            min_length=32,
            max_length=32,
            pattern=_TENANT_ID,
            description="Operators: one tenant's rows (AI metrics).",
        ),
    ] = None,
) -> MetricSeries:
    """A metric per time bucket, summed over every replica's per-minute rollups."""
    filters: dict[Filter, str | None] = {
        "service": service_name,
        "route": route,
        "namespace": namespace,
        "model": model,
        "tenant": tenant,
    }
    query = service.SeriesQuery(
        metric=metric,
        start=start,
        end=end,
        step=step,
        filters={name: value for name, value in filters.items() if value is not None},
    )
    return await service.read_series(
        session,
        auth=auth,
        query=query,
        settings=request.app.state.platform.settings,
        now=utcnow(),
    )
