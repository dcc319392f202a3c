"""SQL budget counters remembered as existing (issue 15's hot path): the store skips
their INSERT ... ON CONFLICT, and a counter deleted since is created again, never
taken for a refusal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import delete

from xynergy.ai_routing.usage.budget_store import SqlBudgetStore
from xynergy.ai_routing.usage.models import BudgetCounter
from xynergy.ai_routing.usage.periods import BudgetCounterRef, period_start
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """SQL counters only (this overrides the package fixture, which adds Redis)."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("pg_database_url"))
    return make_settings()


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
