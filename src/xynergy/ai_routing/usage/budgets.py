"""Budgets: reserve an AI call's maximum cost before it runs, settle the actual after.

A tenant may limit its spend per UTC day and per UTC calendar month, for the
whole tenant and per key. ``reserve`` adds a request's maximum cost to every
applicable counter, all or none, refusing with :class:`BudgetExceeded` (402) if
any would pass its limit; ``settle`` corrects the counters to the actual cost,
``release`` gives the reservation back when the call failed. Committed spend
therefore never passes a limit, whatever the concurrency (settling an actual
cost above the reserved maximum is the caller's bug).

Limits come from ``ai_budgets`` through the platform cache (tag-invalidated on
change, so every replica agrees); a tenant without budgets costs one cache hit.

With Redis unreachable a reservation is refused (503 ``redis_unavailable``), not
moved to the SQL counters: in Redis mode those hold none of the period's spend,
so reserving there would let every tenant spend its whole limit again for as
long as the outage lasts. Settling after an outage began keeps the reserved
maximum (an over-count, never an overspend).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.budget_store import BudgetStore, RedisBudgetStore, SqlBudgetStore
from xynergy.ai_routing.usage.periods import PERIODS, BudgetCounterRef, Period, period_start
from xynergy.ai_routing.usage.repository import BudgetRepository
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import BudgetExceeded, RedisUnavailable, UpstreamUnavailable
from xynergy.platform.logging import get_logger

__all__ = ["CACHE_NAMESPACE", "BudgetGuard", "Reservation"]

log = get_logger(__name__)

CACHE_NAMESPACE = "ai-budgets"
_TENANT_SUBJECT = ""
_PERIOD_WORDS = {"day": "daily", "month": "monthly"}


@dataclass(slots=True)
class Reservation:
    """What :meth:`BudgetGuard.reserve` added, to settle or release exactly once."""

    tenant_id: str
    amount_nanos: int
    counters: tuple[BudgetCounterRef, ...] = ()
    finished: bool = field(default=False, compare=False)

    @property
    def empty(self) -> bool:
        """True when no budget applied: settling it does nothing."""
        return not self.counters


class BudgetGuard:
    """Per-tenant and per-key spend limits, enforced atomically in Redis or SQL."""

    def __init__(
        self,
        *,
        ai: AiSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis | None,
        cache: PlatformCache,
        key_prefix: str,
        redis_retry_after_seconds: int,
    ) -> None:
        self.ai = ai
        self._redis_retry_after = str(redis_retry_after_seconds)
        self._sessionmaker = sessionmaker
        self._cache = cache
        self._store: BudgetStore = (
            RedisBudgetStore(redis, key_prefix)
            if redis is not None
            else SqlBudgetStore(sessionmaker)
        )

    def tag(self, tenant_id: str) -> str:
        """The cache tag of the tenant's limits."""
        return self._cache.tag(CACHE_NAMESPACE, tenant_id)

    async def invalidate(self, tenant_id: str) -> None:
        """Forget the tenant's cached limits, on every replica (after a change)."""
        await self._cache.invalidate(self.tag(tenant_id))

    async def limits(self, tenant_id: str, key_id: str | None) -> list[tuple[str, Period, int]]:
        """(subject, period, limit_nanos) of the budgets applying to a request, cached."""
        subjects = _subjects(key_id)

        async def load() -> list[Any]:
            async with self._sessionmaker() as session:
                rows = await BudgetRepository(session).limits_for(tenant_id, subjects)
            return [list(row) for row in rows]

        cached = await self._cache.get_or_compute(
            CACHE_NAMESPACE,
            tenant_id,
            [key_id or _TENANT_SUBJECT],
            load,
            tags=[self.tag(tenant_id)],
            ttl=self.ai.budget_cache_ttl_seconds,
        )
        return [(str(subject), period, int(limit)) for subject, period, limit in cached]

    async def reserve(
        self,
        *,
        tenant_id: str,
        key_id: str | None,
        max_cost_nanos: int,
        now: datetime | None = None,
    ) -> Reservation:
        """Reserve ``max_cost_nanos`` against every applicable budget, or refuse.

        Raises:
            BudgetExceeded: a budget would pass its limit (nothing was reserved).
            RedisUnavailable: Redis, holding the counters, is unreachable (nothing
                was reserved).
            UpstreamUnavailable: the counter storage failed (nothing was reserved).
        """
        amount = max(0, max_cost_nanos)
        limits = await self.limits(tenant_id, key_id)
        if not limits:
            return Reservation(tenant_id=tenant_id, amount_nanos=amount)
        moment = now or utcnow()
        by_subject = {(subject, period): limit for subject, period, limit in limits}
        # A fixed order (tenant before key, day before month) keeps SQL row locks
        # from deadlocking between two reservations.
        counters = tuple(
            BudgetCounterRef(subject, period, period_start(period, moment), limit)
            for subject in _subjects(key_id)
            for period in PERIODS
            if (limit := by_subject.get((subject, period))) is not None
        )
        try:
            refused = await self._store.reserve(tenant_id, counters, amount)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("ai.budget.reserve_redis_unavailable", error=repr(exc))
            raise RedisUnavailable(
                "The budget counters are unreachable; nothing was reserved. "
                "Retry after the time given in Retry-After.",
                headers={"Retry-After": self._redis_retry_after},
            ) from exc
        except (RedisError, SQLAlchemyError, OSError) as exc:
            log.error("ai.budget.reserve_failed", error=repr(exc))
            raise UpstreamUnavailable("The budget store is unavailable; try again.") from exc
        if refused is not None:
            raise _exceeded(counters[refused], moment)
        return Reservation(tenant_id=tenant_id, amount_nanos=amount, counters=counters)

    async def settle(self, reservation: Reservation, actual_cost_nanos: int) -> None:
        """Replace the reserved amount by the actual cost (once; later calls do nothing)."""
        await self._finish(reservation, max(0, actual_cost_nanos) - reservation.amount_nanos)

    async def release(self, reservation: Reservation) -> None:
        """Give the whole reservation back (the call failed; once)."""
        await self._finish(reservation, -reservation.amount_nanos)

    async def _finish(self, reservation: Reservation, delta: int) -> None:
        if reservation.finished:
            return
        reservation.finished = True
        if reservation.empty or delta == 0:
            return
        try:
            await self._store.add(reservation.tenant_id, reservation.counters, delta)
        except (RedisError, SQLAlchemyError, OSError) as exc:
            # The call already happened; failing its response would not undo it.
            # The counters keep the reserved maximum: an over-count, never under.
            log.error("ai.budget.settle_failed", error=repr(exc), delta_nanos=delta)

    async def close(self) -> None:
        """Write the counter updates still waiting (shutdown, before the database closes)."""
        await self._store.close()

    async def current_spend(
        self, tenant_id: str, counters: Sequence[BudgetCounterRef]
    ) -> list[int]:
        """The spend recorded on each counter (0 where there is none), in order."""
        return await self._store.spent(tenant_id, counters)


def _subjects(key_id: str | None) -> list[str]:
    return [_TENANT_SUBJECT] if key_id is None else [_TENANT_SUBJECT, key_id]


def _exceeded(counter: BudgetCounterRef, now: datetime) -> BudgetExceeded:
    whose = "The tenant's" if not counter.subject else "This key's"
    word = _PERIOD_WORDS[counter.period]
    resets_at = counter.resets_at
    retry_after = max(1, math.ceil((resets_at - now).total_seconds()))
    return BudgetExceeded(
        f"{whose} {word} AI budget would be exceeded by this request; "
        f"it resets at {resets_at.isoformat().replace('+00:00', 'Z')}.",
        headers={"Retry-After": str(retry_after)},
    )
