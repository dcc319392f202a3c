"""Prometheus metrics, one registry per platform instance.

A registry per instance (not the global default) keeps two app instances in one
process, as the tests run them, from mixing their numbers. Every label has a
bounded set of values: routes are templates (``/api/content/{id}``), never raw
paths, and unmatched paths share one label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from xynergy.platform.rollups.sink import NULL_ROLLUPS, RollupSink

__all__ = ["CONTENT_TYPE_LATEST", "PlatformMetrics"]

MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PlatformMetrics:
    """The platform's own metrics; services may register more on ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._service_metrics: dict[str, Counter | Gauge | Histogram] = {}
        # Per-minute rollups in SQL, counted at the same spots as these metrics;
        # the platform replaces the null sink with its recorder when it opens.
        self.rollups: RollupSink = NULL_ROLLUPS
        self.requests = Counter(
            "xynergy_http_requests",
            "HTTP requests served, by route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "xynergy_http_request_duration_seconds",
            "Time to serve an HTTP request.",
            ["service", "method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limit_rejections = Counter(
            "xynergy_rate_limit_rejections",
            "Requests refused with 429, by route class.",
            ["service", "route_class"],
            registry=self.registry,
        )
        self.rate_limit_errors = Counter(
            "xynergy_rate_limit_storage_errors",
            "Requests admitted because the rate-limit storage failed.",
            ["service"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "xynergy_auth_failures",
            "Requests refused with 401 or 403.",
            ["service", "status"],
            registry=self.registry,
        )
        self.readiness_checks = Counter(
            "xynergy_readiness_checks",
            "Backend checks run for /readyz (answers in between come from the last one).",
            registry=self.registry,
        )

        self.breaker_state = Gauge(
            "xynergy_circuit_breaker_state",
            "Circuit state per upstream: 0 closed, 1 open, 2 half-open.",
            ["circuit"],
            registry=self.registry,
        )
        # Breakers per destination (a tenant's webhook host) never become labels:
        # their state changes are counted per upstream only.
        self.breaker_transitions = Counter(
            "xynergy_circuit_breaker_destination_transitions",
            "State changes of per-destination breakers, by upstream and new state.",
            ["circuit", "state"],
            registry=self.registry,
        )
        self.breaker_state_store_errors = Counter(
            "xynergy_circuit_breaker_state_store_errors",
            "Breaker operations run on per-process state because Redis was unreachable.",
            registry=self.registry,
        )

        self.cache_requests = Counter(
            "xynergy_cache_requests",
            "Cache lookups by namespace and result (hit or miss).",
            ["namespace", "result"],
            registry=self.registry,
        )
        self.cache_compute_seconds = Histogram(
            "xynergy_cache_compute_seconds",
            "Time to compute a value on a cache miss.",
            ["namespace"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        # Label values are secret *names* from settings and the AI catalogue (bounded
        # by them), never values.
        self.secret_loaded = Gauge(
            "xynergy_secret_last_loaded_timestamp_seconds",
            "When each secret (or reloaded config file) was last loaded successfully.",
            ["secret"],
            registry=self.registry,
        )
        self.secret_reload_failures = Counter(
            "xynergy_secret_reload_failures",
            "Reloads that kept the running value of a secret because the new one failed.",
            ["secret"],
            registry=self.registry,
        )

    def service_metric(
        self,
        kind: type[MetricT],
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        **options: Any,
    ) -> MetricT:
        """A service's own metric on this registry, created once.

        A service app started again on the same Platform (tests, reloads) gets the
        metric it registered before rather than a duplicate-name error. Names come
        from code, so the map is bounded by it.
        """
        existing = self._service_metrics.get(name)
        if existing is None:
            existing = kind(name, documentation, labelnames, registry=self.registry, **options)
            self._service_metrics[name] = existing  # guard: allow XG005 names from code
        if not isinstance(existing, kind):
            raise TypeError(
                f"metric {name!r} is a {type(existing).__name__}, not a {kind.__name__}"
            )
        return existing

    def render(self) -> bytes:
        """The exposition text of every metric in this registry."""
        return generate_latest(self.registry)
