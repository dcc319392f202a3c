"""The SQL budget store (no Redis) on issue 15's hot path.

* Group commits: reservations and settlements that arrive together are written in
  one transaction, each reservation still all-or-nothing and exact; a failed
  transaction fails every operation of it and stores nothing; a reservation whose
  caller went away is given back.
* Counters remembered as existing: their INSERT ... ON CONFLICT is skipped, and a
  counter deleted since is created again, never taken for a refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from xynergy.ai_routing.usage import repository as repository_module
from xynergy.ai_routing.usage.budget_store import SqlBudgetStore
from xynergy.ai_routing.usage.models import BudgetCounter
from xynergy.ai_routing.usage.periods import BudgetCounterRef, period_start
from xynergy.ai_routing.usage.repository import BudgetCounterRepository
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

LIMIT = 10_000
COST = 300


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """SQL counters only (this overrides the package fixture, which adds Redis)."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("pg_database_url"))
    return make_settings()


def counter(subject: str = "", period: Any = "month", limit: int = LIMIT) -> BudgetCounterRef:
    return BudgetCounterRef(subject, period, period_start(period, utcnow()), limit)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements (first word) and commits the engine runs meanwhile."""
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(args[2].split(None, 1)[0].upper())

    def on_commit(_connection: Any) -> None:
        seen.append("COMMIT")

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", on_execute)
    event.listen(sync, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", on_execute)
        event.remove(sync, "commit", on_commit)


async def test_concurrent_reservations_share_a_transaction_and_stay_exact(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    assert await store.reserve(tenant_id, [month], 0) is None  # the counter exists
    with statements(platform.engine) as seen:
        outcomes = await asyncio.gather(
            *(store.reserve(tenant_id, [month], COST) for _ in range(50))
        )
    admitted = outcomes.count(None)
    assert admitted == LIMIT // COST  # 33: exactly what fits, not one more
    assert set(outcomes) == {None, 0}
    assert await store.spent(tenant_id, [month]) == [admitted * COST]
    # One writer, batches of whatever arrived meanwhile: far fewer than 50 commits.
    commits = seen.count("COMMIT")
    assert 1 <= commits <= 3
    # One UPDATE per reservation, plus one re-check per batch of the first refusal
    # (a counter thought to exist might have been deleted: the tests at the end).
    assert 50 <= seen.count("UPDATE") <= 50 + commits


async def test_settlements_of_a_counter_are_summed_into_one_update(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    assert await store.reserve(tenant_id, [month], 20 * COST) is None
    with statements(platform.engine) as seen:
        await asyncio.gather(*(store.add(tenant_id, [month], -COST) for _ in range(20)))
    assert await store.spent(tenant_id, [month]) == [0]
    assert seen.count("UPDATE") == 1
    assert seen.count("COMMIT") == 1


async def test_a_release_in_the_same_batch_counts_before_its_reservations(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    assert await store.reserve(tenant_id, [month], LIMIT) is None  # full
    # Arrived first, yet admitted: the settlement that frees room is written first.
    admitted, _ = await asyncio.gather(
        store.reserve(tenant_id, [month], COST), store.add(tenant_id, [month], -COST)
    )
    assert admitted is None
    assert await store.spent(tenant_id, [month]) == [LIMIT]


async def test_a_refusal_on_the_second_counter_gives_the_first_back(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    tenant, key = counter(limit=LIMIT), counter(subject="k1", limit=COST)
    both = [tenant, key]
    first, second, third = await asyncio.gather(
        store.reserve(tenant_id, both, COST),
        store.reserve(tenant_id, both, COST),  # the key's counter is full now
        store.reserve(tenant_id, [tenant], COST),
    )
    assert (first, second, third) == (None, 1, None)
    assert await store.spent(tenant_id, both) == [2 * COST, COST]


async def test_a_failed_transaction_fails_every_operation_and_stores_nothing(
    platform: Platform, tenant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month, poisoned = counter(), counter(subject="poison")
    assert await store.reserve(tenant_id, [month], COST) is None
    assert await store.reserve(tenant_id, [poisoned], COST) is None
    add_within_limit = BudgetCounterRepository.add_within_limit

    async def failing(self: Any, tenant: str, ref: BudgetCounterRef, amount: int) -> bool:
        if ref.subject == "poison":
            raise RuntimeError("the database went away")
        return await add_within_limit(self, tenant, ref, amount)

    monkeypatch.setattr(BudgetCounterRepository, "add_within_limit", failing)
    outcomes = await asyncio.gather(
        store.reserve(tenant_id, [month], COST),
        store.add(tenant_id, [month], -COST),
        store.reserve(tenant_id, [poisoned], COST),
        return_exceptions=True,
    )
    assert [type(outcome) for outcome in outcomes] == [RuntimeError] * 3
    monkeypatch.undo()
    assert await store.spent(tenant_id, [month, poisoned]) == [COST, COST]
    # The store goes on: the next batch is written.
    assert await store.reserve(tenant_id, [month], COST) is None
    assert await store.spent(tenant_id, [month]) == [2 * COST]


@pytest.mark.postgres
@pytest.mark.parametrize("backend_settings", ["postgres"], indirect=True)
async def test_batches_of_replicas_take_turns_on_postgresql(
    platform: Platform, tenant_id: str
) -> None:
    # A batch locks many tenants' counters in arrival order; two replicas could
    # lock them in opposite orders. Batches wait for each other's transaction instead.
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    async with platform.engine.connect() as other_replica, other_replica.begin():
        await other_replica.execute(
            select(func.pg_advisory_xact_lock(repository_module._COUNTER_WRITERS_LOCK))
        )
        waiting = asyncio.create_task(store.reserve(tenant_id, [month], COST))
        await asyncio.sleep(0.5)
        assert not waiting.done()
    assert await asyncio.wait_for(waiting, 10) is None
    assert await store.spent(tenant_id, [month]) == [COST]


async def test_a_reservation_whose_caller_went_away_is_given_back(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    assert await store.reserve(tenant_id, [month], 0) is None
    gone = asyncio.create_task(store.reserve(tenant_id, [month], COST))
    await asyncio.sleep(0)  # queued, not written yet
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    kept = await store.reserve(tenant_id, [month], COST)
    await store.close()  # the give-back, queued after the batch, is written too
    assert kept is None
    assert await store.spent(tenant_id, [month]) == [COST]


async def test_close_writes_what_is_waiting(platform: Platform, tenant_id: str) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    month = counter()
    assert await store.reserve(tenant_id, [month], COST) is None
    pending = [asyncio.create_task(store.add(tenant_id, [month], 1)) for _ in range(5)]
    await asyncio.sleep(0)
    await store.close()
    assert all(task.done() for task in pending)
    assert await store.spent(tenant_id, [month]) == [COST + 5]


async def test_a_deleted_counter_is_recreated_not_refused(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    counter = BudgetCounterRef("", "day", period_start("day", utcnow()), 10_000)
    assert await store.reserve(tenant_id, [counter], 3_000) is None
    async with unit_of_work(platform.sessionmaker) as session:
        await session.execute(delete(BudgetCounter))
    # Known to this store, gone from the table: created again, then reserved.
    assert await store.reserve(tenant_id, [counter], 3_000) is None
    assert await store.spent(tenant_id, [counter]) == [3_000]


async def test_a_known_counter_still_refuses_past_its_limit(
    platform: Platform, tenant_id: str
) -> None:
    store = SqlBudgetStore(platform.sessionmaker)
    counter = BudgetCounterRef("", "month", period_start("month", utcnow()), 10_000)
    assert await store.reserve(tenant_id, [counter], 6_000) is None
    assert await store.reserve(tenant_id, [counter], 6_000) == 0
    assert await store.reserve(tenant_id, [counter], 4_000) is None
    assert await store.spent(tenant_id, [counter]) == [10_000]
