"""Circuit breakers for outbound calls, on ``purgatory``.

A breaker per named upstream opens after ``breaker_failure_threshold``
consecutive failures and then fails fast with :class:`CircuitOpen` for
``breaker_reset_seconds``, after which calls are let through again to probe;
one failure while probing reopens it. Without this, an upstream outage makes
every request wait for its full timeout (the review: 100 requests hung 30 s).

What counts as a failure is the caller's choice: raise :class:`UpstreamFailure`
inside the guarded block for an answer that means the upstream is unwell (a
5xx), and let client errors (4xx) pass as successes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["Breakers", "UpstreamFailure"]

_STATE_VALUES = {"closed": 0, "opened": 1, "half-opened": 2}


class UpstreamFailure(Exception):
    """Raised inside a guarded block to count an answer as a failure.

    ``outcome`` carries the answer out of the block, so the caller can still
    hand it on after the breaker has counted it.
    """

    def __init__(self, outcome: object) -> None:
        super().__init__("upstream answered with a failure")
        self.outcome = outcome


class Breakers:
    """One breaker per upstream name; state exported as a gauge."""

    def __init__(self, settings: Settings, metrics: PlatformMetrics) -> None:
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_failure_threshold,
            default_ttl=settings.breaker_reset_seconds,
        )
        self._state = metrics.breaker_state
        self._factory.add_listener(self._on_event)

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            self._state.labels(circuit=name).set(_STATE_VALUES.get(event.state, -1))
        elif event_type == "circuit_breaker_created":
            self._state.labels(circuit=name).set(_STATE_VALUES["closed"])

    @asynccontextmanager
    async def guard(self, upstream: str) -> AsyncIterator[None]:
        """Run the block under ``upstream``'s breaker; CircuitOpen while it is open."""
        breaker = await self._factory.get_breaker(upstream)
        try:
            async with breaker:
                yield
        except OpenedState as exc:
            raise CircuitOpen(f"{upstream} is failing; not calling it for now.") from exc
