"""What the platform's counting spots call: a rollup sink, or one that ignores all.

The middleware, the cache, the rate limiter and the AI ledger reach the sink through
``PlatformMetrics.rollups``; it is :data:`NULL_ROLLUPS` until the platform opens
a recorder (and stays so when rollups are disabled or metrics stand alone).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NULL_ROLLUPS", "NullRollups", "RollupSink"]


class RollupSink(Protocol):
    """Counts one event into the current minute; never blocks, never raises."""

    def request(self, service: str, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request served (route is the template, never the raw path)."""

    def cache(self, namespace: str, *, hit: bool) -> None:
        """One cache lookup."""

    def cache_evictions(self, namespace: str, count: int = 1) -> None:
        """In-process cache entries dropped for room (not expired, not invalidated)."""

    def rate_limited(
        self, service: str, route: str, rate_class: str, tenant_id: str | None
    ) -> None:
        """One request (or unit batch) a rate limit refused."""

    def ai(
        self,
        tenant_id: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanos: int,
        cache_hit: bool,
        error: bool,
    ) -> None:
        """One AI call as billed to ``tenant_id``."""


class NullRollups:
    """A sink that records nothing."""

    def request(self, service: str, method: str, route: str, status: int, seconds: float) -> None:
        return None

    def cache(self, namespace: str, *, hit: bool) -> None:
        return None

    def cache_evictions(self, namespace: str, count: int = 1) -> None:
        return None

    def rate_limited(
        self, service: str, route: str, rate_class: str, tenant_id: str | None
    ) -> None:
        return None

    def ai(
        self,
        tenant_id: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanos: int,
        cache_hit: bool,
        error: bool,
    ) -> None:
        return None


NULL_ROLLUPS = NullRollups()
