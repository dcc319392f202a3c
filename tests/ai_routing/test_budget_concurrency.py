"""Budgets hold under concurrency across replicas; the ledger matches the provider."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import Gateway, gateway, generous_limits, http_model, write_catalogue
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.models import UsageEventRow
from xynergy.platform.config import Settings

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]

REQUESTS = 500
AFFORDABLE = 100
# The fake bills 3 input words and 4 output words ("echo: budget question N") at
# 1 and 2 USD per million tokens: 11 micro-dollars a request.
COST_NANOS = 3 * 1_000 + 4 * 2_000
MAX_TOKENS = 10


def priced_ai(tmp_path: Path, upstream: FakeOpenAI) -> AiSettings:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "alpha")],
    )
    return AiSettings(catalogue=catalogue, ledger_flush_seconds=0.2)


async def ask(gw: Gateway, i: int) -> int:
    response = await gw.client.post(
        "/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": f"budget question {i}"}],
            "max_tokens": MAX_TOKENS,
        },
        headers=gw.headers,
    )
    assert response.status_code in (200, 402), response.text
    return response.status_code


class TestBudgetUnderConcurrency:
    async def test_two_replicas_never_overspend_by_more_than_one_request(
        self,
        make_settings: Callable[..., Settings],
        pg_database_url: str,
        redis_url: str,
        redis_prefix: str,
        tmp_path: Path,
    ) -> None:
        limit_nanos = AFFORDABLE * COST_NANOS
        async with FakeOpenAI() as upstream:
            settings = make_settings(
                database_url=pg_database_url,
                redis_url=redis_url,
                redis_key_prefix=redis_prefix,
                rate_limits=generous_limits(),
            )
            ai = priced_ai(tmp_path, upstream)
            async with gateway(settings, ai) as first, gateway(settings, ai) as second:
                set_budget = await first.client.put(
                    "/api/budgets",
                    json={"period": "day", "limit_usd": f"{limit_nanos / 1e9:.9f}"},
                    headers=first.headers,
                )
                assert set_budget.status_code == 200, set_budget.text
                replicas = (first, second)
                statuses = await asyncio.gather(*(ask(replicas[i % 2], i) for i in range(REQUESTS)))
                # Then one at a time until refused: whatever the burst left (its
                # reservations were at the maximum cost, settled lower) is usable.
                for i in range(REQUESTS, REQUESTS + AFFORDABLE):
                    status = await ask(replicas[i % 2], i)
                    statuses.append(status)
                    if status == 402:
                        break
                max_cost = max(
                    reservation_bound(first, f"budget question {i}") for i in range(len(statuses))
                )
            # Leaving both gateways flushed their ledgers.
            async with gateway(settings, ai) as reader, reader.platform.sessionmaker() as session:
                row = (
                    await session.execute(
                        select(
                            func.count(),
                            func.coalesce(func.sum(UsageEventRow.cost_nanos), 0),
                            func.coalesce(func.sum(UsageEventRow.input_tokens), 0),
                            func.coalesce(func.sum(UsageEventRow.output_tokens), 0),
                        ).where(UsageEventRow.status == "ok")
                    )
                ).one()
        admitted = statuses.count(200)
        assert statuses.count(402) == len(statuses) - admitted
        assert statuses[-1] == 402
        # Never more than the budget plus one request's maximum cost...
        assert admitted * COST_NANOS <= limit_nanos + max_cost
        assert admitted <= AFFORDABLE
        # ...and nothing lost: only less than one maximum cost is left unusable.
        assert admitted * COST_NANOS > limit_nanos - max_cost
        events, cost, input_tokens, output_tokens = row
        assert events == admitted == upstream.answered
        assert (input_tokens, output_tokens) == (
            upstream.reported_input_tokens,
            upstream.reported_output_tokens,
        )
        assert cost == admitted * COST_NANOS


def reservation_bound(gw: Gateway, content: str) -> int:
    """What the gateway reserves for one request: its maximum possible cost."""
    from xynergy.ai_routing.providers.base import ChatMessage
    from xynergy.ai_routing.providers.tokens import max_input_tokens

    model = gw.engine.catalogue.model("m")
    assert model is not None
    return model.cost_nanos(max_input_tokens([ChatMessage("user", content)]), MAX_TOKENS)
