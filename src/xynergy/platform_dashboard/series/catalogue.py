"""The metrics a series can show: which table, which sums, and how a point is read.

Every metric is a few ``SUM``s per time bucket (done in SQL) and a function of
those sums (done here): a count is its sum, a rate is a ratio of two sums, a
latency percentile is read from the summed histogram buckets, which is why
percentiles stay right across replicas and minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from sqlalchemy import ColumnElement, Table

from xynergy.platform.rollups.buckets import BUCKET_COLUMNS, percentile_ms
from xynergy.platform.rollups.models import (
    AI_ROLLUPS,
    CACHE_ROLLUPS,
    RATE_LIMIT_ROLLUPS,
    REQUEST_ROLLUPS,
)

__all__ = ["FILTER_COLUMNS", "GROUP_COLUMNS", "METRICS", "VOLUMES", "Filter", "MetricSpec"]

Filter = Literal["service", "route", "namespace", "model", "tenant", "rate_class"]
Reading = Callable[[Sequence[int]], float | None]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its sums over ``table`` and how a point's value is read from them."""

    table: Table
    sums: tuple[ColumnElement[int], ...]
    read: Reading
    unit: str
    filters: frozenset[Filter]
    # Tenant data: a tenant's key sees its own rows only. Platform-wide metrics
    # (traffic, caches) are the operator's.
    tenant_scoped: bool = False


# Which column each filter compares, per table.
FILTER_COLUMNS: dict[Filter, str] = {
    "service": "service",
    "route": "route",
    "namespace": "namespace",
    "model": "model",
    "tenant": "tenant_id",
    "rate_class": "rate_class",
}

# What a group of a grouped series is, per ``group_by``: a route is only unique
# with its service (every service has its own /metrics).
GROUP_COLUMNS: dict[Filter, tuple[str, ...]] = {
    "service": ("service",),
    "route": ("service", "route"),
    "namespace": ("namespace",),
    "model": ("model",),
    "tenant": ("tenant_id",),
    "rate_class": ("rate_class",),
}


def _first(sums: Sequence[int]) -> float:
    return float(sums[0])


def _ratio(sums: Sequence[int]) -> float | None:
    return sums[0] / sums[1] if sums[1] else None


def _percentile(quantile: float) -> Reading:
    return lambda sums: percentile_ms(sums, quantile)


def _mean_ms(sums: Sequence[int]) -> float | None:
    return sums[0] / sums[1] / 1000.0 if sums[1] else None


def _usd(sums: Sequence[int]) -> float:
    return sums[0] / 1e9


_HTTP: frozenset[Filter] = frozenset({"service", "route"})
_CACHE: frozenset[Filter] = frozenset({"namespace"})
_AI: frozenset[Filter] = frozenset({"model", "tenant"})
_REJECTIONS: frozenset[Filter] = frozenset({"service", "route", "rate_class", "tenant"})

_requests, _cache, _ai = REQUEST_ROLLUPS.c, CACHE_ROLLUPS.c, AI_ROLLUPS.c
_rejected = RATE_LIMIT_ROLLUPS.c

# How busy a group is, per table: what listings and grouped series rank by.
VOLUMES: dict[Table, ColumnElement[int]] = {
    REQUEST_ROLLUPS: _requests.requests,
    CACHE_ROLLUPS: _cache.hits + _cache.misses,
    AI_ROLLUPS: _ai.requests,
    RATE_LIMIT_ROLLUPS: _rejected.rejections,
}
_buckets = tuple(REQUEST_ROLLUPS.c[name] for name in BUCKET_COLUMNS)


def _http(*sums: ColumnElement[int], read: Reading = _first, unit: str = "requests") -> MetricSpec:
    return MetricSpec(REQUEST_ROLLUPS, sums, read, unit, _HTTP)


def _caches(*sums: ColumnElement[int], read: Reading = _first) -> MetricSpec:
    unit = "ratio" if read is _ratio else "lookups"
    return MetricSpec(CACHE_ROLLUPS, sums, read, unit, _CACHE)


def _ai_metric(*sums: ColumnElement[int], read: Reading = _first, unit: str) -> MetricSpec:
    return MetricSpec(AI_ROLLUPS, sums, read, unit, _AI, tenant_scoped=True)


METRICS: MappingProxyType[str, MetricSpec] = MappingProxyType(
    {
        "requests": _http(_requests.requests),
        "errors_5xx": _http(_requests.errors_5xx),
        "errors_4xx": _http(_requests.errors_4xx),
        "error_rate": _http(_requests.errors_5xx, _requests.requests, read=_ratio, unit="ratio"),
        "rate_limited": _http(_requests.rate_limited),
        "latency_mean": _http(
            _requests.latency_sum_us, _requests.requests, read=_mean_ms, unit="ms"
        ),
        "latency_p50": _http(*_buckets, read=_percentile(0.50), unit="ms"),
        "latency_p95": _http(*_buckets, read=_percentile(0.95), unit="ms"),
        "latency_p99": _http(*_buckets, read=_percentile(0.99), unit="ms"),
        "cache_hits": _caches(_cache.hits),
        "cache_misses": _caches(_cache.misses),
        "cache_hit_rate": _caches(_cache.hits, _cache.hits + _cache.misses, read=_ratio),
        "cache_evictions": MetricSpec(
            CACHE_ROLLUPS, (_cache.evictions,), _first, "entries", _CACHE
        ),
        # Every limit's refusals, where the limiter refused (a tenant sees its keys' own).
        "rate_limit_rejections": MetricSpec(
            RATE_LIMIT_ROLLUPS, (_rejected.rejections,), _first, "requests", _REJECTIONS, True
        ),
        "ai_requests": _ai_metric(_ai.requests, unit="requests"),
        "ai_errors": _ai_metric(_ai.errors, unit="requests"),
        "ai_cache_hits": _ai_metric(_ai.cache_hits, unit="requests"),
        "ai_input_tokens": _ai_metric(_ai.input_tokens, unit="tokens"),
        "ai_output_tokens": _ai_metric(_ai.output_tokens, unit="tokens"),
        "ai_tokens": _ai_metric(_ai.input_tokens + _ai.output_tokens, unit="tokens"),
        "ai_cost_usd": _ai_metric(_ai.cost_nanos, read=_usd, unit="usd"),
    }
)
