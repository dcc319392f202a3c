"""Fixtures of the usage ledger and budgets: a Platform per backend, guards, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.helpers import ensure_tenant
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.events import UsageEvent
from xynergy.ai_routing.usage.models import BudgetLimit, UsageEventRow
from xynergy.ai_routing.usage.periods import Period
from xynergy.ai_routing.usage.repository import BudgetRepository
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """Platform settings for each counter store: SQLite, PostgreSQL, Redis (on SQLite)."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("pg_database_url"))
    if request.param == "redis":
        return redis_settings(
            make_settings,
            request.getfixturevalue("redis_url"),
            request.getfixturevalue("redis_prefix"),
        )
    return make_settings()


def redis_settings(make_settings: Callable[..., Settings], url: str, prefix: str) -> Settings:
    # The default pool: past its size, commands wait for a connection (a blocking
    # pool), which the 500-reservation concurrency tests exercise.
    return make_settings(redis_url=url, redis_key_prefix=prefix)


@pytest.fixture
def ai_settings() -> AiSettings:
    return AiSettings()


@pytest.fixture
async def platform(backend_settings: Settings) -> AsyncIterator[Platform]:
    opened = await Platform.open(backend_settings)
    try:
        yield opened
    finally:
        await opened.close()


def make_guard(platform: Platform, ai: AiSettings) -> BudgetGuard:
    return BudgetGuard(
        ai=ai,
        sessionmaker=platform.sessionmaker,
        redis=platform.redis,
        cache=platform.cache,
        key_prefix=platform.settings.redis_key_prefix,
        redis_retry_after_seconds=platform.settings.redis_unavailable_retry_after_seconds,
    )


@pytest.fixture
def guard(platform: Platform, ai_settings: AiSettings) -> BudgetGuard:
    return make_guard(platform, ai_settings)


@pytest.fixture
async def tenant_id(platform: Platform) -> str:
    return await ensure_tenant(platform, "acme")


def event(tenant_id: str, **fields: Any) -> UsageEvent:
    """A usage event with plausible defaults."""
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "key_id": None,
        "request_id": "req-1",
        "task": "chat",
        "model": "offline-small",
        "provider": "offline",
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_nanos": 1_000,
        "cache_hit": False,
        "deduplicated": False,
        "latency_ms": 5,
        "status": "ok",
        "occurred_at": utcnow(),
    }
    values.update(fields)
    return UsageEvent(**values)


async def count_events(platform: Platform, tenant_id: str | None = None) -> int:
    query = select(func.count()).select_from(UsageEventRow)
    if tenant_id is not None:
        query = query.where(UsageEventRow.tenant_id == tenant_id)
    async with platform.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


async def count_budgets(platform: Platform) -> int:
    async with platform.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(BudgetLimit)) or 0)


async def set_limit(
    platform: Platform,
    guard: BudgetGuard,
    *,
    tenant_id: str,
    period: Period,
    limit_nanos: int,
    key_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Store a budget directly (the API is tested separately) and drop cached limits."""
    async with unit_of_work(platform.sessionmaker) as session:
        await BudgetRepository(session).upsert(
            tenant_id=tenant_id,
            subject=key_id or "",
            period=period,
            limit_nanos=limit_nanos,
            now=now or utcnow(),
        )
    await guard.invalidate(tenant_id)
