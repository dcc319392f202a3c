"""Where budget counters live: Redis (shared by replicas) or SQL (no Redis).

Both stores reserve all-or-nothing: either every counter of a reservation
takes the amount without passing its limit, or none changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from cachetools import LRUCache
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.ai_routing.usage.periods import BudgetCounterRef
from xynergy.ai_routing.usage.repository import BudgetCounterRepository
from xynergy.platform.db.session import unit_of_work

__all__ = ["COUNTER_TTL_MARGIN", "BudgetStore", "RedisBudgetStore", "SqlBudgetStore"]

# A counter outlives its period by this much, so a request reserved just before
# midnight settles against the counter it reserved on (and replicas with
# slightly skewed clocks still agree), then Redis drops it.
COUNTER_TTL_MARGIN = timedelta(days=1)

# KEYS: the counters. ARGV: the amount, then per counter its limit and the unix
# time it expires at. Returns 0 when every counter took the amount, else the
# 1-based index of the first counter that would have passed its limit (and then
# none changed). Lua numbers are doubles: exact for integers below 2**53 nanos
# (about $9M), which the API's limit bound stays under.
_RESERVE = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = tonumber(redis.call('GET', key) or '0')
  if spent + amount > tonumber(ARGV[2 * i]) then
    return i
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, amount)
  redis.call('EXPIREAT', key, ARGV[2 * i + 1])
end
return 0
"""


class BudgetStore(Protocol):
    async def reserve(
        self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int
    ) -> int | None:
        """Add ``amount`` to every counter or to none; the index of a refusing counter."""

    async def add(self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int) -> None:
        """Add ``amount`` (may be negative) to every counter, whatever the limits."""

    async def spent(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> list[int]:
        """The current spend on each counter, in order."""


# Counters remembered as existing (tenant, subject, period, start): a few per tenant.
_KNOWN_MAX = 10_000


class _Refused(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class SqlBudgetStore:
    """Counters as rows of ``ai_budget_counters``; one transaction per reservation.

    The conditional UPDATE (``spent + amount <= limit``) is evaluated under the
    row's write lock, so concurrent reservations serialise on each counter and
    none can see a stale spend. Counters are always touched in the same order
    (tenant before key, day before month), so two reservations cannot deadlock.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        # Counters this process has created or seen: their INSERT ... ON CONFLICT is
        # skipped (one statement of three per request). Least recently used go first.
        self._known: LRUCache[tuple[str, str, str, object], bool] = LRUCache(_KNOWN_MAX)

    async def reserve(
        self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int
    ) -> int | None:
        keys = [(tenant_id, c.subject, c.period, c.start) for c in counters]
        known = all(key in self._known for key in keys)
        try:
            async with unit_of_work(self._sessionmaker) as session:
                repository = BudgetCounterRepository(session)
                if not known:
                    await repository.ensure(tenant_id, counters)
                for index, counter in enumerate(counters):
                    if not await repository.add_within_limit(tenant_id, counter, amount):
                        raise _Refused(index)  # rolls back the counters already added to
        except _Refused as refused:
            if known:
                # A counter thought to exist may have been deleted since: refuse only
                # after creating what is missing (once; ``known`` is False then).
                for key in keys:
                    self._known.pop(key, None)
                return await self.reserve(tenant_id, counters, amount)
            return refused.index
        for key in keys:
            self._known[key] = True
        return None

    async def add(self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            repository = BudgetCounterRepository(session)
            for counter in counters:
                await repository.add(tenant_id, counter, amount)

    async def spent(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> list[int]:
        async with self._sessionmaker() as session:
            return await BudgetCounterRepository(session).spent(tenant_id, counters)


class RedisBudgetStore:
    """Counters as Redis integers, checked and incremented by one Lua script.

    Keys carry the tenant in a hash tag, so one reservation's keys share a
    cluster slot; each key expires a margin after its period ends.
    """

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix + "ai:budget:"
        self._reserve = redis.register_script(_RESERVE)

    def key(self, tenant_id: str, counter: BudgetCounterRef) -> str:
        """The Redis key of ``counter``."""
        subject = counter.subject or "tenant"
        return (
            f"{self._prefix}{{{tenant_id}}}:{subject}:{counter.period}:{counter.start.isoformat()}"
        )

    @staticmethod
    def _expires_at(counter: BudgetCounterRef) -> int:
        return int((counter.resets_at + COUNTER_TTL_MARGIN).timestamp())

    async def reserve(
        self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int
    ) -> int | None:
        args: list[int] = [amount]
        for counter in counters:
            args += [counter.limit_nanos, self._expires_at(counter)]
        keys = [self.key(tenant_id, counter) for counter in counters]
        refused = int(await self._reserve(keys=keys, args=args))
        return refused - 1 if refused else None

    async def add(self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for counter in counters:
                key = self.key(tenant_id, counter)
                pipe.incrby(key, amount)
                # An absolute deadline: setting it again is harmless, and a key
                # recreated after expiry never lives on without a TTL.
                pipe.expireat(key, self._expires_at(counter))
            await pipe.execute()

    async def spent(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> list[int]:
        if not counters:
            return []
        values = await self._redis.mget([self.key(tenant_id, counter) for counter in counters])
        return [int(value) if value is not None else 0 for value in values]
