"""Request rate limits per route class, on ``limits``.

Each route belongs to a class (``reads``, ``writes``, ``ai_generate``...) whose
limit comes from settings. Authenticated requests are counted per API key, public
ones per client IP. Storage is Redis when configured (so every replica counts
against one budget) and a bounded in-process store otherwise.

Every rejection is counted on ``/metrics`` (per service and limit) and in the
per-minute rollups per service, route template, limit and tenant. The route and
tenant are the request's: the platform's route handler binds them
(:func:`bind_request`) before anything in the request consumes a limit, so a
service's own budgets (tokens per minute, a form's submissions) are recorded
under the route that spent them without passing it along.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from contextvars import ContextVar, Token
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis

from xynergy.platform.config import Settings
from xynergy.platform.exceptions import RateLimited
from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics

__all__ = [
    "BoundedMemoryStorage",
    "LimitedRequest",
    "RateLimiter",
    "bind_request",
    "unbind_request",
]

log = get_logger(__name__)


@dataclass(slots=True)
class LimitedRequest:
    """The request a limit is consumed for: its route template and, once the key is
    known, its tenant (None for public routes, counted per address)."""

    route: str
    tenant_id: str | None = None


_REQUEST: ContextVar[LimitedRequest | None] = ContextVar("xynergy_limited_request", default=None)


def bind_request(route: str) -> tuple[LimitedRequest, Token[LimitedRequest | None]]:
    """Name the request's route for the rejections counted while it runs.

    Returns the binding (set its ``tenant_id`` once the caller is known) and the
    token the caller resets the variable with when the request ends (an in-process
    call between services runs in its caller's context).
    """
    bound = LimitedRequest(route)
    return bound, _REQUEST.set(bound)


def unbind_request(token: Token[LimitedRequest | None]) -> None:
    """Restore what :func:`bind_request` replaced."""
    _REQUEST.reset(token)


class BoundedMemoryStorage(MemoryStorage):
    """In-process counters for ``limits``' fixed-window strategy, with a cap on keys.

    The stock memory store keeps a counter per key until its window ends (so a
    burst of distinct clients, or spoofed addresses, grows it without bound),
    takes a lock and schedules an expiry task on almost every hit. On one event
    loop a counter update has no await inside it, so it needs no lock; expiry
    happens when a key is next touched, and past the cap the least recently used
    key is forgotten: that client's count restarts, which costs it nothing and an
    attacker nothing it did not already have.
    """

    def __init__(self, max_keys: int) -> None:
        super().__init__()
        self._max_keys = max_keys
        self._windows: OrderedDict[str, list[float]] = OrderedDict()  # key -> [count, expiry]

    @property
    def tracked_keys(self) -> int:
        """How many keys hold state now (for tests and metrics)."""
        return len(self._windows) + len(self.storage) + len(self.events)

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = [0, now + expiry]
            self._windows[key] = window
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        window[0] += amount
        return int(window[0])

    async def get(self, key: str) -> int:
        window = self._windows.get(key)
        if window is None or window[1] <= time.time():
            return 0
        return int(window[0])

    async def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        return window[1] if window is not None else time.time()

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)
        await super().clear(key)


class RateLimiter:
    """Admits or rejects one request of a route class for one identity."""

    def __init__(self, settings: Settings, redis: Redis | None, metrics: PlatformMetrics) -> None:
        self._items = {name: parse(limit) for name, limit in settings.rate_limits.items()}
        self._metrics = metrics
        self.storage: Storage
        if redis is not None:
            self.storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                # One pool for the whole process: the limiter borrows ours.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
                key_prefix=settings.redis_key_prefix + "rl",
            )
        else:
            self.storage = BoundedMemoryStorage(settings.rate_limit_memory_max_keys)
        self._strategy = FixedWindowRateLimiter(self.storage)

    def item_for(self, route_class: str) -> RateLimitItem:
        """The configured limit of ``route_class`` (KeyError for an unknown class)."""
        return self._items[route_class]

    async def exhausted(self, route_class: str, identity: str) -> bool:
        """Whether ``identity`` has no requests left in ``route_class`` (counts nothing)."""
        try:
            return not await self._strategy.test(self._items[route_class], route_class, identity)
        except Exception:
            log.warning("rate_limit.storage_unavailable", exc_info=True)
            return False

    async def hit(self, route_class: str, identity: str, *, service: str) -> None:
        """Count one request; raises RateLimited (with headers) past the limit."""
        await self.consume(self._items[route_class], route_class, identity, service=service)

    async def consume(
        self,
        item: RateLimitItem,
        namespace: str,
        identity: str,
        *,
        service: str,
        cost: int = 1,
    ) -> None:
        """Count ``cost`` units of ``item`` (e.g. tokens per minute) for ``identity``.

        Raises RateLimited (with headers) when the units do not fit in the window.
        """
        try:
            admitted = await self._strategy.hit(item, namespace, identity, cost=cost)
        except Exception:
            # A limiter outage must not become an API outage: admit, but loudly.
            self._metrics.rate_limit_errors.labels(service=service).inc()
            log.warning("rate_limit.storage_unavailable", exc_info=True)
            return
        if admitted:
            return
        try:
            stats = await self._strategy.get_window_stats(item, namespace, identity)
        except Exception:
            # Refused, then the store went away before the window could be read (its
            # Retry-After is unknown): the outage policy holds here too, admit.
            self._metrics.rate_limit_errors.labels(service=service).inc()
            log.warning("rate_limit.storage_unavailable", exc_info=True)
            return
        self._metrics.rate_limit_rejections.labels(service=service, route_class=namespace).inc()
        bound = _REQUEST.get()
        self._metrics.rollups.rate_limited(
            service,
            bound.route if bound is not None else "",
            namespace,
            bound.tenant_id if bound is not None else None,
        )
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"The {namespace} limit of {item.amount} per {item.multiples} "
            f"{item.GRANULARITY.name} is used up for this client.",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Limit": str(item.amount),
                "RateLimit-Remaining": str(stats.remaining),
                "RateLimit-Reset": str(retry_after),
                "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
            },
        )
