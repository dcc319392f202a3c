"""Where budget counters live: Redis (shared by replicas) or SQL (no Redis).

Both stores reserve all-or-nothing: either every counter of a reservation
takes the amount without passing its limit, or none changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Protocol

from cachetools import LRUCache
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.ai_routing.usage.periods import BudgetCounterRef
from xynergy.ai_routing.usage.repository import BudgetCounterRepository
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger

__all__ = ["COUNTER_TTL_MARGIN", "BudgetStore", "RedisBudgetStore", "SqlBudgetStore"]

log = get_logger(__name__)

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

    async def close(self) -> None:
        """Finish what was accepted (shutdown)."""


# Counters remembered as existing (tenant, subject, period, start): a few per tenant.
_KNOWN_MAX = 10_000
# Operations written in one transaction at most; more wait for the next one.
_BATCH_MAX = 256

CounterKey = tuple[str, str, str, object]


@dataclass(slots=True)
class _Operation:
    """A reservation (all-or-nothing, within the limits; ``done`` gets the index of
    a refusing counter or None) or a settlement (added whatever the limits)."""

    reserve: bool
    tenant_id: str
    counters: tuple[BudgetCounterRef, ...]
    amount: int
    done: asyncio.Future[int | None]


def _future() -> asyncio.Future[int | None]:
    return asyncio.get_running_loop().create_future()


def _log_failure(done: asyncio.Future[int | None]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.error("ai.budget.give_back_failed", error=repr(exc))


class SqlBudgetStore:
    """Counters as rows of ``ai_budget_counters``, written in group commits.

    Reservations and settlements that arrive while a transaction is being written
    wait and go together into the next one (at most ``_BATCH_MAX``): one BEGIN and
    one COMMIT for the batch instead of two transactions per proxied call, and
    settlements of one counter summed into one UPDATE. On SQLite's single writer
    that was most of a budgeted call's CPU and all of its queueing.

    Each reservation is still all-or-nothing and exact: the conditional UPDATE
    (``spent + amount <= limit``) runs under the row's write lock, one reservation
    after the other in arrival order, and a reservation refused on its second
    counter takes back what its first counter took, inside the same transaction.
    A batch touches many tenants' counters in arrival order, so on PostgreSQL the
    batches of different replicas take turns on one advisory lock rather than risk
    locking rows in opposite orders (a deadlock); SQLite has one writer. When the
    transaction fails, every operation of the batch fails with its error, and
    nothing of it is stored.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        # Counters this process has created or seen: their INSERT ... ON CONFLICT is
        # skipped. Least recently used go first.
        self._known: LRUCache[CounterKey, bool] = LRUCache(_KNOWN_MAX)
        # Operations waiting for the next transaction: each caller awaits its own,
        # so there are at most as many as calls in flight.
        self._waiting: list[_Operation] = []  # guard: allow XG005 one per call in flight
        self._writer: asyncio.Task[None] | None = None

    async def reserve(
        self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int
    ) -> int | None:
        operation = _Operation(True, tenant_id, tuple(counters), amount, _future())
        try:
            return await self._submit(operation)
        except asyncio.CancelledError:
            # Written with its batch all the same: what it takes for a caller that
            # is gone is given back in the next transaction.
            operation.done.add_done_callback(partial(self._give_back, operation))
            raise

    async def add(self, tenant_id: str, counters: Sequence[BudgetCounterRef], amount: int) -> None:
        await self._submit(_Operation(False, tenant_id, tuple(counters), amount, _future()))

    async def spent(self, tenant_id: str, counters: Sequence[BudgetCounterRef]) -> list[int]:
        async with self._sessionmaker() as session:
            return await BudgetCounterRepository(session).spent(tenant_id, counters)

    async def close(self) -> None:
        """Write what is waiting (shutdown); later calls start a new writer."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    def _give_back(self, operation: _Operation, done: asyncio.Future[int | None]) -> None:
        if done.cancelled() or done.exception() is not None or done.result() is not None:
            return  # nothing was taken
        give_back = _Operation(
            False, operation.tenant_id, operation.counters, -operation.amount, _future()
        )
        # Nobody awaits it: a failure is logged (the counters then over-count, never under).
        give_back.done.add_done_callback(_log_failure)
        self._queue(give_back)

    async def _submit(self, operation: _Operation) -> int | None:
        self._queue(operation)
        # Shielded: a caller that goes away leaves its operation to be written
        # (or failed) with the rest, not half-done.
        return await asyncio.shield(operation.done)

    def _queue(self, operation: _Operation) -> None:
        self._waiting.append(operation)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="ai-budget-writer")

    async def _write_all(self) -> None:
        while self._waiting:  # bounded: each turn takes up to _BATCH_MAX operations
            batch = self._waiting[:_BATCH_MAX]
            del self._waiting[: len(batch)]
            try:
                outcomes = await self._write(batch)
            except Exception as exc:
                for operation in batch:
                    if not operation.done.done():
                        operation.done.set_exception(exc)
                continue
            for operation, outcome in zip(batch, outcomes, strict=True):
                if not operation.done.done():
                    operation.done.set_result(outcome)

    async def _write(self, batch: list[_Operation]) -> list[int | None]:
        """One transaction: the settlements summed per counter, then every
        reservation in arrival order. Settlements first: they mostly give back what
        a reservation kept over the call's actual cost, so no reservation of the
        batch is refused for spend already released."""
        settled: dict[tuple[str, BudgetCounterRef], int] = {}
        for operation in batch:
            if not operation.reserve:
                for counter in operation.counters:
                    target = (operation.tenant_id, counter)
                    settled[target] = settled.get(target, 0) + operation.amount
        outcomes: list[int | None] = []
        created: set[CounterKey] = set()
        async with unit_of_work(self._sessionmaker) as session:
            repository = BudgetCounterRepository(session)
            await repository.serialise_writers()
            for (tenant_id, counter), amount in settled.items():
                if amount:
                    await repository.add(tenant_id, counter, amount)
            for operation in batch:
                outcomes.append(
                    await self._reserve_one(repository, operation, created)
                    if operation.reserve
                    else None
                )
        for key in created:
            self._known[key] = True
        return outcomes

    async def _reserve_one(
        self, repository: BudgetCounterRepository, operation: _Operation, created: set[CounterKey]
    ) -> int | None:
        tenant_id, counters = operation.tenant_id, operation.counters
        keys = {(tenant_id, c.subject, c.period, c.start) for c in counters}
        if not keys <= created and not all(key in self._known for key in keys):
            await repository.ensure(tenant_id, counters)
            created |= keys
        refused = await self._take(repository, operation)
        if refused is not None and not keys <= created:
            # A counter thought to exist may have been deleted since (an UPDATE of no
            # row looks like a refusal): create what is missing, then try once more.
            await repository.ensure(tenant_id, counters)
            created |= keys
            refused = await self._take(repository, operation)
        return refused

    @staticmethod
    async def _take(repository: BudgetCounterRepository, operation: _Operation) -> int | None:
        """Add the amount to every counter, or to none: the refusing counter's index."""
        tenant_id, amount = operation.tenant_id, operation.amount
        for index, counter in enumerate(operation.counters):
            if not await repository.add_within_limit(tenant_id, counter, amount):
                for taken in operation.counters[:index]:
                    await repository.add(tenant_id, taken, -amount)
                return index
        return None


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

    async def close(self) -> None:
        """Nothing waits here: every command was sent by its caller."""
