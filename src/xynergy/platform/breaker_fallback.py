"""Breaker state that outlives a Redis outage: shared when Redis answers, local when not.

A breaker whose Redis state cannot be read or written (a refused connection, a
command past ``redis_socket_timeout_seconds``) keeps working on this process's
own state for that circuit: the call it guards goes ahead, failures still count
and still open the breaker, only no other replica sees them. Redis is tried
again at most every ``redis_reconnect_backoff_seconds``, so an outage costs one
timeout per interval rather than one per call; the first command that succeeds
ends the outage, the local state is dropped and the shared state is used again.

A Redis outage must not turn a call that would succeed into an error: without
this the breaker's own bookkeeping failed every guarded call with a 500.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import Counter
from purgatory.domain.model import Context
from purgatory.service._async.repository import AsyncAbstractRepository
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from xynergy.platform.logging import get_logger

__all__ = ["FallbackRepository", "StateStoreOutage"]

log = get_logger(__name__)

ResultT = TypeVar("ResultT")
# What "Redis cannot be reached" looks like; any other error is a bug and propagates.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
_CLOSED = "closed"


class StateStoreOutage:
    """Whether the shared breaker state is reachable, as last seen, for every breaker.

    Logs an outage once when it starts and once when it ends (with how many
    operations ran on local state meanwhile), and counts each such operation.
    """

    def __init__(self, degraded: Counter, retry_interval_seconds: float) -> None:
        self._degraded = degraded
        self._retry_interval = retry_interval_seconds
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._operations = 0
        self._on_recovery: list[Callable[[], None]] = []  # guard: allow XG005 set up once

    @property
    def down(self) -> bool:
        """True while the last attempt on the shared state failed."""
        return self._down_since is not None

    def on_recovery(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when an outage ends (to drop the local state)."""
        self._on_recovery.append(callback)

    def should_try_shared(self) -> bool:
        """False while down and the retry interval has not passed."""
        return self._down_since is None or time.monotonic() >= self._retry_at

    def degraded(self, error: BaseException | None = None) -> None:
        """One operation ran on local state (``error``: the shared store just failed)."""
        self._degraded.inc()
        self._operations += 1
        now = time.monotonic()
        if error is not None:
            self._retry_at = now + self._retry_interval
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "breaker.state_store_unavailable",
                error=repr(error),
                detail="circuit breakers use per-process state until Redis answers",
            )

    def reachable(self) -> None:
        """The shared store answered: end the outage, if there was one."""
        if self._down_since is None:
            return
        log.info(
            "breaker.state_store_recovered",
            degraded_operations=self._operations,
            outage_seconds=round(time.monotonic() - self._down_since, 1),
        )
        self._down_since = None
        self._operations = 0
        for callback in self._on_recovery:
            callback()


class FallbackRepository(AsyncAbstractRepository):
    """``shared`` (Redis) breaker contexts, ``local`` ones while it is unreachable.

    ``local`` holds live contexts; writes made here during an outage replace its
    entry with one carrying the new values, so a context read from Redis just
    before the outage began is carried on correctly too.
    """

    def __init__(
        self,
        shared: AsyncAbstractRepository,
        local: AsyncAbstractRepository,
        outage: StateStoreOutage,
        *,
        threshold: int,
        ttl: float,
    ) -> None:
        self._shared = shared
        self._local = local
        self._outage = outage
        self._threshold = threshold
        self._ttl = ttl
        self.messages = []

    async def _on_shared(self, operation: Callable[[], Awaitable[ResultT]]) -> tuple[bool, Any]:
        """(True, result) if the shared store did it; (False, None) to do it locally."""
        if not self._outage.should_try_shared():
            self._outage.degraded()
            return False, None
        try:
            result = await operation()
        except _UNREACHABLE as exc:
            self._outage.degraded(exc)
            return False, None
        self._outage.reachable()
        return True, result

    async def get(self, name: str) -> Context | None:
        done, context = await self._on_shared(lambda: self._shared.get(name))
        return context if done else await self._local.get(name)

    async def register(self, context: Context) -> None:
        done, _ = await self._on_shared(lambda: self._shared.register(context))
        if not done:
            await self._local.register(context)

    async def update_state(self, name: str, state: str, opened_at: float | None) -> None:
        done, _ = await self._on_shared(lambda: self._shared.update_state(name, state, opened_at))
        if not done:
            # As in Redis: a breaker that closes starts counting failures afresh.
            reset = {"failure_count": 0} if state == _CLOSED else {}
            await self._write_local(name, state=state, opened_at=opened_at, **reset)

    async def inc_failures(self, name: str, failure_count: int) -> None:
        done, _ = await self._on_shared(lambda: self._shared.inc_failures(name, failure_count))
        if not done:
            await self._write_local(name, failure_count=failure_count)

    async def reset_failure(self, name: str) -> None:
        done, _ = await self._on_shared(lambda: self._shared.reset_failure(name))
        if not done:
            await self._write_local(name, failure_count=0)

    async def _write_local(self, name: str, **changes: Any) -> None:
        current = await self._local.get(name)
        values: dict[str, Any] = {
            "threshold": self._threshold,
            "ttl": self._ttl,
            "state": _CLOSED,
            "failure_count": 0,
            "opened_at": None,
        }
        if current is not None:
            values.update(
                threshold=current.threshold,
                ttl=current.ttl,
                state=current.state,
                failure_count=current.failure_count or 0,
                opened_at=current.opened_at,
            )
        values.update(changes)
        await self._local.register(Context(name, **values))
