"""Schemas of the metric series."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GroupSeries",
    "GroupedSeries",
    "MetricSeries",
    "NamespaceListing",
    "NamespaceStats",
    "SeriesPoint",
    "TrafficListing",
    "TrafficTotals",
]


class SeriesPoint(BaseModel):
    """One time bucket: its start and the metric's value over it."""

    t: datetime = Field(description="Start of the bucket (UTC).")
    value: float | None = Field(
        description="The metric over the bucket; null where it is undefined (a rate or a "
        "percentile of no requests)."
    )


class MetricSeries(BaseModel):
    """A metric's values per step, summed over every replica's rollups."""

    model_config = ConfigDict(populate_by_name=True)

    metric: str
    unit: str = Field(description="requests, lookups, tokens, usd, ms or ratio.")
    from_: datetime = Field(alias="from", description="Start of the first bucket (UTC).")
    to: datetime = Field(description="End of the last bucket (UTC).")
    step: int = Field(description="Bucket width in seconds.")
    scope: Literal["platform", "tenant"] = Field(
        description="platform: every tenant's rows (or the platform's traffic); tenant: "
        "the rows of `tenant` only."
    )
    tenant: str | None = None
    service: str | None = None
    route: str | None = None
    rate_class: str | None = None
    namespace: str | None = None
    model: str | None = None
    points: list[SeriesPoint]


class GroupSeries(BaseModel):
    """One group's points (a service, a route, a namespace...)."""

    group: dict[str, str | None] = Field(
        description="The group's values by name, e.g. {service, route}; a null tenant is "
        "public requests (counted per address)."
    )
    volume: int = Field(
        description="What the groups are ranked by, over the whole range: requests, lookups "
        "or rejections."
    )
    points: list[SeriesPoint]


class GroupedSeries(BaseModel):
    """A metric's busiest groups, a series each, over the same buckets."""

    model_config = ConfigDict(populate_by_name=True)

    metric: str
    unit: str
    group_by: str
    from_: datetime = Field(alias="from")
    to: datetime
    step: int
    scope: Literal["platform", "tenant"]
    tenant: str | None = None
    series: list[GroupSeries] = Field(description="Busiest first.")
    more: bool = Field(description="Whether more groups than these have data in the range.")


class TrafficTotals(BaseModel):
    """Requests of one service (or one route) over a range, summed over every replica."""

    service: str
    route: str | None = Field(default=None, description="Null in the per-service listing.")
    requests: int
    errors_5xx: int
    rate_limited: int = Field(description="Answered 429 (any limit).")
    error_rate: float | None = Field(description="errors_5xx / requests.")
    latency_p99_ms: float | None = Field(description="From the summed latency buckets.")


class TrafficListing(BaseModel):
    """The busiest services or routes of a range, busiest first."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    items: list[TrafficTotals]
    more: bool = Field(description="Whether more have requests in the range.")


class NamespaceStats(BaseModel):
    """One cache namespace: lookups over the range (every replica) and its live size here."""

    namespace: str
    hits: int
    misses: int
    hit_rate: float | None = Field(description="hits / (hits + misses); null without lookups.")
    evictions: int = Field(
        description="In-process entries dropped for room over the range, every replica "
        "(from the rollups)."
    )
    entries: int = Field(description="In-process (L1) entries now, in this process.")
    evictions_here: int = Field(
        description="In-process evictions in this process since it started."
    )


class NamespaceListing(BaseModel):
    """Cache namespaces, busiest first; then those with entries here but no lookups in range."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    items: list[NamespaceStats]
    more: bool = Field(description="Whether more namespaces had lookups in the range.")
