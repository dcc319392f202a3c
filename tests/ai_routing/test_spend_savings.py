"""Cache savings: a cache hit (and a joined call) records what its answer would have cost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import gateway
from tests.ai_routing.spend_fixtures import PRICED_MODEL, priced_offline_ai
from tests.ai_routing.test_dedup import (
    ARRIVAL_TIMEOUT_SECONDS,
    body,
    joined,
    one_model_ai,
    wait_until,
)
from xynergy.ai_routing.usage.models import UsageDailyRow, UsageEventRow
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

JOINERS = 4


class TestCacheHitSavings:
    async def test_the_second_identical_request_is_a_hit_that_saved_the_first_cost(
        self, make_settings: Callable[..., Settings], database_url: str, tmp_path: Path
    ) -> None:
        ai = priced_offline_ai(tmp_path)
        async with gateway(make_settings(database_url=database_url), ai) as gw:
            body = {"task": "keywords", "prompt": "ideas for: tea shop", "model": PRICED_MODEL}
            first = await gw.generate(**body)
            second = await gw.generate(**body)
            await gw.engine.ledger.flush()
            async with gw.platform.sessionmaker() as session:
                events = (
                    await session.execute(
                        select(
                            UsageEventRow.cache_hit,
                            UsageEventRow.cost_nanos,
                            UsageEventRow.saved_nanos,
                        )
                        .where(UsageEventRow.tenant_id == gw.tenant_id)
                        .order_by(UsageEventRow.cache_hit)
                    )
                ).all()
                daily = (
                    await session.execute(
                        select(UsageDailyRow.cost_nanos, UsageDailyRow.saved_nanos).where(
                            UsageDailyRow.tenant_id == gw.tenant_id
                        )
                    )
                ).one()
            spend = (await gw.client.get("/api/spend", headers=gw.headers)).json()
        assert first.status_code == 200, first.text
        assert second.json()["cached"] is True
        (miss_hit, miss_cost, miss_saved), (hit, hit_cost, hit_saved) = events
        assert (miss_hit, hit) == (False, True)
        assert miss_cost > 0, "the priced model must cost something"
        assert (miss_saved, hit_cost) == (0, 0)
        assert hit_saved == miss_cost
        assert tuple(daily) == (miss_cost, miss_cost)
        assert spend["totals"]["saved_usd"] == spend["totals"]["cost_usd"]
        assert spend["totals"]["cache_hits"] == 1


class TestJoinedCallSavings:
    async def test_requests_joining_one_in_flight_record_what_they_saved(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with gateway(make_settings(), one_model_ai(tmp_path, upstream)) as gw:
                tasks = [
                    asyncio.create_task(
                        gw.client.post("/v1/chat/completions", json=body(), headers=gw.headers)
                    )
                    for _ in range(JOINERS + 1)
                ]
                await upstream.wait_for_calls(1, timeout=ARRIVAL_TIMEOUT_SECONDS)
                await wait_until(lambda: joined(gw) >= JOINERS)
                upstream.gate.set()
                answers = await asyncio.gather(*tasks)
                await gw.engine.ledger.flush()
                async with gw.platform.sessionmaker() as session:
                    rows = (
                        await session.execute(
                            select(
                                UsageEventRow.deduplicated,
                                UsageEventRow.cost_nanos,
                                UsageEventRow.saved_nanos,
                            ).where(UsageEventRow.tenant_id == gw.tenant_id)
                        )
                    ).all()
        assert all(answer.status_code == 200 for answer in answers)
        (billed,) = [row for row in rows if not row.deduplicated]
        followers = [row for row in rows if row.deduplicated]
        assert len(followers) == JOINERS
        assert billed.cost_nanos > 0
        assert billed.saved_nanos == 0
        assert all(row.saved_nanos == billed.cost_nanos for row in followers)
        assert all(row.cost_nanos == 0 for row in followers)
