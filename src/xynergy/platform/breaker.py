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
pool that nothing closes and writes keys that never expire. While Redis cannot
be reached each breaker keeps working on this process's own state
(``breaker_fallback``), so a Redis outage never fails a guarded call.

Breakers per destination: a call to a URL a tenant chose (a webhook) is guarded
per (upstream, destination), the destination naming the tenant and the
scheme, host and port, so one tenant's dead receiver never stops another
tenant's deliveries, nor its own to another port. Those names come from users,
so they are held apart from the configured ones: in process in a map bounded by
``breaker_max_destinations`` whose idle entries expire after
``breaker_idle_seconds`` (in Redis, keys expiring after that idle time), and
they never become metric labels: their state changes are counted per upstream.

What counts as a failure is the caller's choice: raise :class:`UpstreamFailure`
(or any exception) inside the guarded block for an answer that means the
upstream is unwell (a 5xx), and let client errors (4xx) pass as successes. A
cancelled caller is not a failure of the upstream.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cachetools import TTLCache
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import Context, OpenedState
from purgatory.service._async.repository import AsyncAbstractRepository
from purgatory.service._async.unit_of_work import AsyncAbstractUnitOfWork
from redis.asyncio import Redis

from xynergy.platform.breaker_fallback import FallbackRepository, StateStoreOutage
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["Breakers", "UpstreamFailure"]

_STATE_VALUES = {"closed": 0, "opened": 1, "half-opened": 2}
_CLOSED, _OPENED, _HALF_OPENED = "closed", "opened", "half-opened"
# Joins an upstream and a destination into one breaker name; upstream names
# (from code) never contain it, so the upstream is what precedes the first one.
_DESTINATION_SEPARATOR = "|"


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


class _DirectUnitOfWork(AsyncAbstractUnitOfWork):
    """Each repository call writes at once (Redis command or live object): no transaction."""

    def __init__(self, repository: AsyncAbstractRepository) -> None:
        self.contexts = repository

    async def commit(self) -> None:
        """Each repository call has written already; nothing to commit."""

    async def rollback(self) -> None:
        """Nothing is buffered; nothing to roll back."""


class _BoundedMemoryRepository(AsyncAbstractRepository):
    """Breaker contexts in process, at most ``max_entries``, each dropped once idle.

    purgatory's own in-memory repository is a dict that keeps every name forever.
    Contexts are the live objects (as in purgatory's), so state changes need no
    write; a lookup refreshes the entry, so idle time counts from the last call.
    """

    def __init__(self, max_entries: int, idle_seconds: float) -> None:
        self._contexts: TTLCache[str, Context] = TTLCache(max_entries, idle_seconds)
        self.messages = []

    def __len__(self) -> int:
        self._contexts.expire()
        return len(self._contexts)

    def clear(self) -> None:
        """Forget every context."""
        self._contexts.clear()

    async def get(self, name: str) -> Context | None:
        context = self._contexts.get(name)
        if context is not None:
            self._contexts[name] = context
        return context

    async def register(self, context: Context) -> None:
        self._contexts[context.name] = context

    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        """The stored context is the live one; nothing to write."""

    async def inc_failures(self, name: str, failure_count: int) -> None:
        """The stored context is the live one; nothing to write."""

    async def reset_failure(self, name: str) -> None:
        """The stored context is the live one; nothing to write."""


class Breakers:
    """Breakers by upstream name (state exported as a gauge) and by destination."""

    def __init__(
        self, settings: Settings, metrics: PlatformMetrics, redis: Redis | None = None
    ) -> None:
        uow = None
        # An idle destination breaker is forgotten, but never before it could close.
        idle = max(settings.breaker_idle_seconds, settings.breaker_reset_seconds)
        self._destinations = _BoundedMemoryRepository(settings.breaker_max_destinations, idle)
        destination_uow: AsyncAbstractUnitOfWork = _DirectUnitOfWork(self._destinations)
        self.state_store_outage = StateStoreOutage(
            metrics.breaker_state_store_errors, settings.redis_reconnect_backoff_seconds
        )
        if redis is not None:
            prefix = settings.redis_key_prefix + "cbr:"
            # Long enough to outlive many open/close cycles; refreshed on every write.
            ttl = max(3600, int(settings.breaker_reset_seconds * 10))
            # In Redis mode the in-process maps hold only what an outage needs.
            local = _BoundedMemoryRepository(settings.breaker_max_destinations, idle)
            self.state_store_outage.on_recovery(local.clear)
            self.state_store_outage.on_recovery(self._destinations.clear)

            def degradable(
                shared: AsyncAbstractRepository, fallback: _BoundedMemoryRepository
            ) -> _DirectUnitOfWork:
                return _DirectUnitOfWork(
                    FallbackRepository(
                        shared,
                        fallback,
                        self.state_store_outage,
                        threshold=settings.breaker_failure_threshold,
                        ttl=settings.breaker_reset_seconds,
                    )
                )

            uow = degradable(_RedisBreakerRepository(redis, prefix, ttl), local)
            destination_uow = degradable(
                _RedisBreakerRepository(redis, prefix, max(1, math.ceil(idle))),
                self._destinations,
            )
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_failure_threshold,
            default_ttl=settings.breaker_reset_seconds,
            exclude=[asyncio.CancelledError],
            uow=uow,
        )
        self._per_destination = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_failure_threshold,
            default_ttl=settings.breaker_reset_seconds,
            exclude=[asyncio.CancelledError],
            uow=destination_uow,
        )
        self._state = metrics.breaker_state
        self._transitions = metrics.breaker_transitions
        self._factory.add_listener(self._on_event)
        self._per_destination.add_listener(self._on_destination_event)
        # A name is here only while its probe call runs: bounded by calls in flight.
        self._probing: set[str] = set()  # guard: allow XG005 emptied as each probe ends

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            self._state.labels(circuit=name).set(_STATE_VALUES.get(event.state, -1))
        elif event_type == "circuit_breaker_created":
            self._state.labels(circuit=name).set(_STATE_VALUES["closed"])

    def _on_destination_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            upstream = name.split(_DESTINATION_SEPARATOR, 1)[0]
            self._transitions.labels(circuit=upstream, state=event.state).inc()

    @property
    def destinations_held(self) -> int:
        """How many per-destination breakers this process holds (none with Redis)."""
        return len(self._destinations)

    def _factory_and_name(
        self, upstream: str, destination: str | None
    ) -> tuple[AsyncCircuitBreakerFactory, str]:
        if destination is None:
            return self._factory, upstream
        if _DESTINATION_SEPARATOR in upstream:
            raise ValueError(f"an upstream name never contains {_DESTINATION_SEPARATOR!r}")
        return self._per_destination, f"{upstream}{_DESTINATION_SEPARATOR}{destination}"

    async def state(self, upstream: str, destination: str | None = None) -> str:
        """``closed``, ``opened`` or ``half-opened`` as stored now."""
        factory, name = self._factory_and_name(upstream, destination)
        breaker = await factory.get_breaker(name)
        return breaker.context.state

    @asynccontextmanager
    async def guard(self, upstream: str, destination: str | None = None) -> AsyncIterator[None]:
        """Run the block under the breaker of ``upstream`` (a name from code or
        configuration), or of ``destination`` under it (a name users chose, e.g. a
        tenant's webhook host); CircuitOpen while that breaker is open."""
        factory, name = self._factory_and_name(upstream, destination)
        breaker = await factory.get_breaker(name)
        context = breaker.context
        probe = context.state == _HALF_OPENED or (
            context.state == _OPENED
            and context.opened_at is not None
            and time.time() > context.opened_at + context.ttl
        )
        if probe:
            if name in self._probing:
                raise CircuitOpen(f"{name} is failing; a probe call is in flight.")
            self._probing.add(name)
        try:
            async with breaker:
                yield
        except OpenedState as exc:
            raise CircuitOpen(f"{name} is failing; not calling it for now.") from exc
        finally:
            if probe:
                self._probing.discard(name)
