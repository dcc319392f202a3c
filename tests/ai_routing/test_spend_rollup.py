"""The daily rollup equals the ledger's sums, whatever the events and their batching."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import case, func, select

from tests.ai_routing.usage.conftest import event
from tests.helpers import ensure_tenant
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.ledger import UsageLedger
from xynergy.ai_routing.usage.models import UsageDailyRow, UsageEventRow
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

pytestmark = pytest.mark.asyncio

EVENTS = 2_000
SEEDS = (7, 2026)
_SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "saved_nanos",
    "cache_hits",
    "deduplicated",
    "errors",
)


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    opened = await Platform.open(make_settings(database_url=database_url))
    try:
        yield opened
    finally:
        await opened.close()


def random_events(rng: random.Random, tenants: list[str], count: int) -> list[Any]:
    start = datetime(2026, 10, 30, 20, tzinfo=UTC)
    events = []
    for number in range(count):
        hit = rng.random() < 0.3
        joined = not hit and rng.random() < 0.1
        failed = not hit and not joined and rng.random() < 0.05
        billed = not (hit or joined)
        events.append(
            event(
                rng.choice(tenants),
                key_id=rng.choice([None, "a" * 32, "b" * 32, "c" * 32]),
                request_id=f"req-{number}",
                task=rng.choice(["chat", "keywords", "summary"]),
                model=rng.choice(["m-small", "m-large", "xynergy-offline"]),
                input_tokens=rng.randrange(0, 5_000) if billed else 0,
                output_tokens=rng.randrange(0, 5_000) if billed else 0,
                cost_nanos=rng.randrange(0, 10**9) if billed else 0,
                saved_nanos=0 if billed else rng.randrange(0, 10**9),
                cache_hit=hit,
                deduplicated=joined,
                status="error" if failed else "ok",
                # Across a month boundary and a dozen days, in random order.
                occurred_at=start + timedelta(seconds=rng.randrange(0, 12 * 86_400)),
            )
        )
    return events


async def ledger_sums(platform: Platform) -> dict[tuple[Any, ...], tuple[int, ...]]:
    events = UsageEventRow

    def count_true(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    key = func.coalesce(events.key_id, "")
    query = select(
        events.tenant_id,
        events.day,
        key,
        events.model,
        events.task,
        func.count(),
        func.sum(events.input_tokens),
        func.sum(events.output_tokens),
        func.sum(events.cost_nanos),
        func.sum(events.saved_nanos),
        count_true(events.cache_hit),
        count_true(events.deduplicated),
        count_true(events.status != "ok"),
    ).group_by(events.tenant_id, events.day, key, events.model, events.task)
    async with platform.sessionmaker() as session:
        rows = (await session.execute(query)).all()
    return {tuple(row[:5]): tuple(int(value) for value in row[5:]) for row in rows}


async def rollup_sums(platform: Platform) -> dict[tuple[Any, ...], tuple[int, ...]]:
    daily = UsageDailyRow
    columns = [getattr(daily, name) for name in _SUMS]
    query = select(daily.tenant_id, daily.day, daily.key_id, daily.model, daily.task, *columns)
    async with platform.sessionmaker() as session:
        rows = (await session.execute(query)).all()
    return {tuple(row[:5]): tuple(int(value) for value in row[5:]) for row in rows}


class TestDailyRollupEqualsLedger:
    @pytest.mark.parametrize("seed", SEEDS)
    async def test_after_many_batches_every_group_sums_to_the_ledger(
        self, platform: Platform, seed: int
    ) -> None:
        rng = random.Random(seed)
        tenants = [await ensure_tenant(platform, name) for name in ("acme", "globex", "initech")]
        # Small, uneven batches: the same group is added to by many batches.
        ledger = UsageLedger(
            ai=AiSettings(ledger_batch_max=rng.randrange(37, 301)),
            sessionmaker=platform.sessionmaker,
            metrics=platform.metrics,
        )
        events = random_events(rng, tenants, EVENTS)
        written = 0
        for chunk_start in range(0, EVENTS, 500):
            for item in events[chunk_start : chunk_start + 500]:
                ledger.record(item)
            written += await ledger.flush()
        assert written == EVENTS
        expected = await ledger_sums(platform)
        assert len(expected) > 100, "the draw should spread over many groups"
        assert await rollup_sums(platform) == expected
