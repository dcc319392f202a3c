"""GET /api/metrics/series (one series or the busiest groups' series) and the listings
of what has data: services, routes, cache namespaces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query, Request

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Forbidden, NotFound
from xynergy.platform.routing import api_router, raises
from xynergy.platform_dashboard.auth import MetricsReader
from xynergy.platform_dashboard.series import service
from xynergy.platform_dashboard.series.catalogue import Filter
from xynergy.platform_dashboard.series.grouped import read_grouped
from xynergy.platform_dashboard.series.listing import list_namespaces, list_traffic
from xynergy.platform_dashboard.series.schemas import (
    GroupedSeries,
    MetricSeries,
    NamespaceListing,
    TrafficListing,
)

__all__ = ["router"]

router = api_router(prefix="/api/metrics", tags=["metrics"])

_TENANT_ID = r"^[0-9a-f]{32}$"

Metric = Annotated[
    str, Query(min_length=1, max_length=64, description="requests, latency_p99, ai_cost_usd...")
]
From = Annotated[
    datetime | None,
    Query(alias="from", description="ISO 8601 or epoch seconds; default: an hour before to."),
]
To = Annotated[
    datetime | None, Query(alias="to", description="ISO 8601 or epoch seconds; default: now.")
]
Step = Annotated[
    int | None,
    Query(ge=60, le=10 * 365 * 86_400, description="Seconds per point, a multiple of 60."),
]
ServiceName = Annotated[str | None, Query(alias="service", max_length=64)]
Route = Annotated[
    str | None, Query(max_length=255, description="A route template, e.g. /api/content/{id}.")
]
Namespace = Annotated[str | None, Query(max_length=64, description="A cache namespace.")]
Model = Annotated[str | None, Query(max_length=200, description="An AI model.")]
RateClass = Annotated[
    str | None,
    Query(max_length=64, description="A rate limit: a route class (reads, ai_generate...)."),
]
Tenant = Annotated[
    str | None,
    Query(
        min_length=32,
        max_length=32,
        pattern=_TENANT_ID,
        description="Operators: one tenant's rows (AI metrics, rate-limit rejections).",
    ),
]
Limit = Annotated[
    int | None,
    Query(ge=1, le=10_000, description="Rows at most (default and bound: from settings)."),
]
GroupBy = Literal["service", "route", "namespace", "model", "tenant", "rate_class"]


def _query(
    metric: str,
    start: datetime | None,
    end: datetime | None,
    step: int | None,
    filters: dict[Filter, str | None],
) -> service.SeriesQuery:
    """The query both series endpoints read; a filter left out (None) is dropped."""
    return service.SeriesQuery(
        metric=metric,
        start=start,
        end=end,
        step=step,
        filters={name: value for name, value in filters.items() if value is not None},
    )


def _filters(
    service_name: str | None,
    route: str | None,
    namespace: str | None,
    model: str | None,
    rate_class: str | None,
    tenant: str | None,
) -> dict[Filter, str | None]:
    """The filter parameters both series endpoints take, by the catalogue's names."""
    return {
        "service": service_name,
        "route": route,
        "namespace": namespace,
        "model": model,
        "rate_class": rate_class,
        "tenant": tenant,
    }


async def _traffic(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    *,
    service_name: str | None,
    by_route: bool,
) -> TrafficListing:
    """What the services and routes listings share: one traffic listing over the range,
    of one service if named."""
    return await list_traffic(
        session,
        auth=auth,
        start=start,
        end=end,
        limit=limit,
        service=service_name,
        by_route=by_route,
        settings=request.app.state.platform.settings,
        now=utcnow(),
    )


@router.get("/series", response_model=MetricSeries, response_model_by_alias=True)
@raises(Forbidden, NotFound)
async def metric_series(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    metric: Metric,
    start: From = None,
    end: To = None,
    step: Step = None,
    service_name: ServiceName = None,
    route: Route = None,
    namespace: Namespace = None,
    model: Model = None,
    rate_class: RateClass = None,
    tenant: Tenant = None,
) -> MetricSeries:
    """A metric per time bucket, summed over every replica's per-minute rollups."""
    filters = _filters(service_name, route, namespace, model, rate_class, tenant)
    return await service.read_series(
        session,
        auth=auth,
        query=_query(metric, start, end, step, filters),
        settings=request.app.state.platform.settings,
        now=utcnow(),
    )


@router.get("/series/grouped", response_model=GroupedSeries, response_model_by_alias=True)
@raises(Forbidden, NotFound)
async def grouped_series(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    metric: Metric,
    group_by: Annotated[GroupBy, Query(description="What each series is: a route is per service.")],
    start: From = None,
    end: To = None,
    step: Step = None,
    limit: Annotated[
        int | None, Query(ge=1, le=100, description="Series at most, the busiest.")
    ] = None,
    service_name: ServiceName = None,
    route: Route = None,
    namespace: Namespace = None,
    model: Model = None,
    rate_class: RateClass = None,
    tenant: Tenant = None,
) -> GroupedSeries:
    """The busiest groups' series of a metric (by requests, lookups or rejections) in one
    answer; each the same as the metric filtered to that group."""
    filters = _filters(service_name, route, namespace, model, rate_class, tenant)
    return await read_grouped(
        session,
        auth=auth,
        query=_query(metric, start, end, step, filters),
        group_by=group_by,
        limit=limit,
        settings=request.app.state.platform.settings,
        now=utcnow(),
    )


@router.get("/services", response_model=TrafficListing, response_model_by_alias=True)
@raises(Forbidden)
async def traffic_services(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    start: From = None,
    end: To = None,
    limit: Limit = None,
) -> TrafficListing:
    """Operators: the services with requests in the range, busiest first, with their error
    rate and p99."""
    return await _traffic(
        request, session, auth, start, end, limit, service_name=None, by_route=False
    )


@router.get("/routes", response_model=TrafficListing, response_model_by_alias=True)
@raises(Forbidden)
async def traffic_routes(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    start: From = None,
    end: To = None,
    limit: Limit = None,
    service_name: ServiceName = None,
) -> TrafficListing:
    """Operators: the route templates with requests in the range (of one service if
    named), busiest first, with their error rate and p99."""
    return await _traffic(
        request, session, auth, start, end, limit, service_name=service_name, by_route=True
    )


@router.get("/cache-namespaces", response_model=NamespaceListing, response_model_by_alias=True)
@raises(Forbidden)
async def cache_namespaces(
    request: Request,
    session: SessionDep,
    auth: MetricsReader,
    start: From = None,
    end: To = None,
    limit: Limit = None,
) -> NamespaceListing:
    """Operators: cache namespaces by lookups in the range (every replica): hits, misses,
    hit rate, evictions; and this process's in-process entries and evictions."""
    platform = request.app.state.platform
    return await list_namespaces(
        session,
        auth=auth,
        cache=platform.cache,
        start=start,
        end=end,
        limit=limit,
        settings=platform.settings,
        now=utcnow(),
    )
