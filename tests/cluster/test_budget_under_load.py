"""An AI budget is never overspent by more than one request's maximum cost, across 3 replicas.

A tenant with a small daily budget sends many concurrent AI calls through nginx
(each prompt distinct, so every call is billed: no cache hit, no shared flight).
The ledger in PostgreSQL, summed afterwards, must stay within the budget plus one
request's maximum cost, and lose less than one: after the burst, calls one at a
time until refused use up what the burst's maximum-cost reservations left.

Load is concurrent httpx, not wrk: wrk repeats one body, and identical prompts
would be answered once and shared (deduplicated), costing nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.cluster.own_services import (
    INPUT_USD_PER_MTOK,
    MODEL,
    OUTPUT_USD_PER_MTOK,
    dedicated_cluster,
    tenant_key,
)
from tests.cluster.support import access_log_lines, replica_names
from tests.helpers import auth
from xynergy.ai_routing.providers.base import ChatMessage
from xynergy.ai_routing.providers.tokens import max_input_tokens

pytestmark = pytest.mark.cluster

REQUESTS = 600
CONNECTIONS = 48
MAX_TOKENS = 16
# The budget affords about this many calls at their maximum cost (more at their actual).
AFFORDABLE_AT_MAX = 60
TAIL_LIMIT = 400
LEDGER_WAIT_SECONDS = 15.0
CALL_TIMEOUT_SECONDS = 60.0


def _prompt(i: int) -> str:
    return f"budget probe {i:05d} about running shoes"


def max_cost_nanos(content: str) -> int:
    """What a replica reserves for one call: the catalogue price of its bound tokens."""
    bound = max_input_tokens([ChatMessage("user", content)])
    micro = Decimal(INPUT_USD_PER_MTOK) * bound + Decimal(OUTPUT_USD_PER_MTOK) * MAX_TOKENS
    return int(micro * 1_000)


@pytest.fixture(scope="module")
def budget_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Its own replicas (priced AI, generous limits) on CI's PostgreSQL and Redis."""
    with dedicated_cluster(
        tmp_path_factory.mktemp("budget"),
        database_name="xynergy_cluster_budget",
        extra_env={"XYNERGY_AI_LEDGER_FLUSH_SECONDS": "0.2"},
    ) as running:
        yield running


async def _call(client: httpx.AsyncClient, secret: str, i: int, request_id: str) -> int:
    answer = await client.post(
        "/ai-routing-engine/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": _prompt(i)}],
            "max_tokens": MAX_TOKENS,
        },
        headers=auth(secret) | {"X-Request-ID": request_id},
    )
    return answer.status_code


async def _burst(base_url: str, secret: str, request_id: str) -> list[int]:
    gate = asyncio.Semaphore(CONNECTIONS)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=CALL_TIMEOUT_SECONDS, limits=limits
    ) as client:

        async def one(i: int) -> int:
            async with gate:
                return await _call(client, secret, i, request_id)

        return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


async def _tail(base_url: str, secret: str) -> list[int]:
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=CALL_TIMEOUT_SECONDS) as client:
        for i in range(REQUESTS, REQUESTS + TAIL_LIMIT):
            statuses.append(await _call(client, secret, i, f"budget-tail-{i}"))
            if statuses[-1] != HTTPStatus.OK:
                break
    return statuses


async def _ledger(database_url: str, tenant_id: str, billed: int) -> tuple[int, int]:
    """(events, summed cost) of the tenant's billed calls, once ``billed`` are flushed."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""), timeout=10)
    try:
        deadline = time.monotonic() + LEDGER_WAIT_SECONDS
        while True:
            row = await connection.fetchrow(
                "SELECT count(*) AS events, coalesce(sum(cost_nanos), 0) AS cost "
                "FROM ai_usage_events WHERE tenant_id = $1 AND status = 'ok'",
                tenant_id,
            )
            assert row is not None
            if row["events"] >= billed or time.monotonic() > deadline:
                return int(row["events"]), int(row["cost"])
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def test_budget_holds_across_replicas_under_concurrent_calls(budget_cluster: Any) -> None:
    cluster = budget_cluster
    tenant_id, _key_id, secret = tenant_key(cluster, "budget-load")
    worst = max(max_cost_nanos(_prompt(i)) for i in range(REQUESTS + TAIL_LIMIT))
    limit_nanos = AFFORDABLE_AT_MAX * worst
    limit_usd = f"{Decimal(limit_nanos).scaleb(-9):.9f}"
    stored = httpx.put(
        cluster.proxy_url + "/ai-routing-engine/api/budgets",
        json={"period": "day", "limit_usd": limit_usd},
        headers=auth(secret),
        timeout=30,
    )
    assert stored.status_code == HTTPStatus.OK, stored.text

    request_id = f"cluster-budget-{uuid.uuid4().hex}"
    started = time.monotonic()
    burst = asyncio.run(_burst(cluster.proxy_url, secret, request_id))
    burst_seconds = time.monotonic() - started
    tail = asyncio.run(_tail(cluster.proxy_url, secret))
    statuses = Counter(burst) + Counter(tail)
    admitted = statuses[HTTPStatus.OK]
    events, spent = asyncio.run(_ledger(cluster.database_url, tenant_id, admitted))

    per_replica: dict[str, Counter[int]] = defaultdict(Counter)
    names = replica_names(cluster)
    for line in access_log_lines(cluster, request_id):
        per_replica[names.get(line["upstream"], line["upstream"])][line["status"]] += 1
    burst_counts = Counter(burst)
    print(  # noqa: T201
        f"\nbudget {limit_usd} USD/day (= {AFFORDABLE_AT_MAX} x max cost {worst} nanos); "
        f"{REQUESTS} calls, {CONNECTIONS} at a time via nginx in {burst_seconds:.1f} s: "
        f"{burst_counts[200]} admitted, {burst_counts[402]} refused; then {len(tail)} one at a "
        f"time ({Counter(tail)[200]} admitted)\n"
        f"ledger: {events} billed calls, {spent} nanos = {spent / limit_nanos:.4f} of the "
        f"budget; over by {max(0, spent - limit_nanos)} nanos (bound {worst}), "
        f"left unused {max(0, limit_nanos - spent)} nanos"
    )
    for name, counts in sorted(per_replica.items()):
        print(f"  {name}: {counts[200]} admitted, {counts[402]} refused")  # noqa: T201

    assert set(statuses) <= {HTTPStatus.OK, HTTPStatus.PAYMENT_REQUIRED}, statuses
    assert burst_counts[HTTPStatus.PAYMENT_REQUIRED] > 0  # the burst went past the budget
    assert tail[-1] == HTTPStatus.PAYMENT_REQUIRED, tail[-5:]
    assert events == admitted  # every admitted call is in the ledger, once
    # Never overspent by more than one call's maximum cost...
    assert spent <= limit_nanos + worst, (spent, limit_nanos, worst)
    # ...and no more than one call's maximum cost left unusable.
    assert spent > limit_nanos - worst, (spent, limit_nanos, worst)
    # The budget is shared: every replica admitted and refused calls of the burst.
    assert len(per_replica) == len(cluster.replicas), per_replica
    assert all(counts[200] > 0 for counts in per_replica.values()), per_replica
