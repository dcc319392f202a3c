"""Circuit breakers for outbound calls, on ``purgatory``.

A breaker per named upstream opens after ``breaker_failure_threshold``
consecutive failures and then fails fast with :class:`CircuitOpen` for
``breaker_reset_seconds``; after that one probe call is let through (one per
process at a time) and its outcome closes or reopens the breaker. Without this,
an upstream outage makes every request wait for its full timeout (the review:
100 requests hung 30 s).

With Redis configured, breaker state lives there (our pool, our key prefix, a
TTL on every key), so every replica sees an upstream that one replica found
down. purgatory ships a Redis repository too, but it opens its own connection
pool that nothing closes and writes keys that never expire.

What counts as a failure is the caller's choice: raise :class:`UpstreamFailure`
(or any exception) inside the guarded block for an answer that means the
upstream is unwell (a 5xx), and let client errors (4xx) pass as successes. A
cancelled caller is not a failure of the upstream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import Context, OpenedState
from purgatory.service._async.repository import AsyncAbstractRepository
from purgatory.service._async.unit_of_work import AsyncAbstractUnitOfWork
from redis.asyncio import Redis

from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["Breakers", "UpstreamFailure"]

_STATE_VALUES = {"closed": 0, "opened": 1, "half-opened": 2}
_CLOSED, _OPENED, _HALF_OPENED = "closed", "opened", "half-opened"


class UpstreamFailure(Exception):
    """Raised inside a guarded block to count an answer as a failure.

    ``outcome`` carries the answer out of the block, so the caller can still
    hand it on after the breaker has counted it.
    """

    def __init__(self, outcome: object) -> None:
        super().__init__("upstream answered with a failure")
        self.outcome = outcome


class _RedisBreakerRepository(AsyncAbstractRepository):
    """Breaker contexts in Redis: one JSON state key and one failure counter each."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.messages = []

    def _state_key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _failures_key(self, name: str) -> str:
        return f"{self.prefix}{name}:failures"

    async def get(self, name: str) -> Context | None:
        raw_state, raw_failures = await self.redis.mget(
            self._state_key(name), self._failures_key(name)
        )
        if raw_state is None:
            return None
        data = json.loads(raw_state)
        return Context(
            name,
            threshold=data["threshold"],
            ttl=data["ttl"],
            state=data["state"],
            failure_count=int(raw_failures or 0),
            opened_at=data.get("opened_at"),
        )

    async def register(self, context: Context) -> None:
        state = {"threshold": context.threshold, "ttl": context.ttl, "state": _CLOSED}
        # NX: a replica registering late must not close a breaker another opened.
        await self.redis.set(self._state_key(context.name), json.dumps(state), nx=True, ex=self.ttl)

    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        current = await self.redis.get(self._state_key(name))
        data = json.loads(current) if current else {}
        data.update(state=state, opened_at=opened_at)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._state_key(name), json.dumps(data), ex=self.ttl)
            if state == _CLOSED:
                pipe.set(self._failures_key(name), 0, ex=self.ttl)
            await pipe.execute()

    async def inc_failures(self, name: str, failure_count: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._failures_key(name))
            pipe.expire(self._failures_key(name), self.ttl)
            await pipe.execute()

    async def reset_failure(self, name: str) -> None:
        await self.redis.set(self._failures_key(name), 0, ex=self.ttl)


class _RedisUnitOfWork(AsyncAbstractUnitOfWork):
    def __init__(self, repository: _RedisBreakerRepository) -> None:
        self.contexts = repository

    async def commit(self) -> None:
        """Each repository call is its own Redis command; nothing to commit."""

    async def rollback(self) -> None:
        """Nothing is buffered; nothing to roll back."""


class Breakers:
    """One breaker per upstream name; state exported as a gauge."""

    def __init__(
        self, settings: Settings, metrics: PlatformMetrics, redis: Redis | None = None
    ) -> None:
        uow = None
        if redis is not None:
            # Long enough to outlive many open/close cycles; refreshed on every write.
            ttl = max(3600, int(settings.breaker_reset_seconds * 10))
            repository = _RedisBreakerRepository(redis, settings.redis_key_prefix + "cbr:", ttl)
            uow = _RedisUnitOfWork(repository)
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_failure_threshold,
            default_ttl=settings.breaker_reset_seconds,
            exclude=[asyncio.CancelledError],
            uow=uow,
        )
        self._state = metrics.breaker_state
        self._factory.add_listener(self._on_event)
        # Names come from configuration, so this set is bounded by it.
        self._probing: set[str] = set()

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            self._state.labels(circuit=name).set(_STATE_VALUES.get(event.state, -1))
        elif event_type == "circuit_breaker_created":
            self._state.labels(circuit=name).set(_STATE_VALUES["closed"])

    async def state(self, upstream: str) -> str:
        """``closed``, ``opened`` or ``half-opened`` as stored now."""
        breaker = await self._factory.get_breaker(upstream)
        return breaker.context.state

    @asynccontextmanager
    async def guard(self, upstream: str) -> AsyncIterator[None]:
        """Run the block under ``upstream``'s breaker; CircuitOpen while it is open."""
        breaker = await self._factory.get_breaker(upstream)
        context = breaker.context
        probe = context.state == _HALF_OPENED or (
            context.state == _OPENED
            and context.opened_at is not None
            and time.time() > context.opened_at + context.ttl
        )
        if probe:
            if upstream in self._probing:
                raise CircuitOpen(f"{upstream} is failing; a probe call is in flight.")
            self._probing.add(upstream)
        try:
            async with breaker:
                yield
        except OpenedState as exc:
            raise CircuitOpen(f"{upstream} is failing; not calling it for now.") from exc
        finally:
            if probe:
                self._probing.discard(upstream)
