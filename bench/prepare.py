"""A throwaway data dir: migrated SQLite database, one tenant, read-only keys, and
(for the trending row) keywords with 30 days of ranking observations."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from apps import BENCH_SCOPE, TRENDING_SCOPE
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.aso_engine.models import Keyword, RankingObservation
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy.service import create_key, create_tenant

__all__ = ["BenchKeys", "create_bench_key", "create_bench_keys", "platform_env", "scrubbed_env"]

# Far above anything one process can serve in an hour: the limiter still counts
# every request (that cost is what we measure) but never rejects one.
HUGE_LIMIT = "1000000000/hour"
# Seeded for the trending row: every keyword observed once a day on one engine.
TRENDING_KEYWORDS = 200
TRENDING_DAYS = 30
TRENDING_ENGINE = "app-store"
TRENDING_LOCALE = "en-US"


@dataclass(frozen=True, slots=True)
class BenchKeys:
    """Secrets of the bench tenant's keys: one per scope a row needs."""

    ping: str  # content:read, for GET /ping on the platform app
    trending: str  # keywords:read, for GET /api/keywords/trending on the ASO Engine


def scrubbed_env() -> dict[str, str]:
    """This process's environment without any ``XYNERGY_*`` the caller had set,
    so a developer's own database or Redis never leaks into the benchmark."""
    return {name: value for name, value in os.environ.items() if not name.startswith("XYNERGY_")}


def platform_env(data_dir: Path, *, access_log: bool, redis_url: str | None) -> dict[str, str]:
    """``XYNERGY_*`` variables for one platform server."""
    env = {
        # Production, so the response carries every header a real deployment sends.
        "XYNERGY_ENVIRONMENT": "production",
        "XYNERGY_INTERNAL_TOKEN_SECRET": secrets.token_urlsafe(48),
        "XYNERGY_DATA_DIR": str(data_dir),
        "XYNERGY_RATE_LIMITS": json.dumps(dict.fromkeys(DEFAULT_RATE_LIMITS, HUGE_LIMIT)),
        "XYNERGY_ACCESS_LOG": "true" if access_log else "false",
        "XYNERGY_LOG_LEVEL": "INFO",
    }
    if redis_url:
        env["XYNERGY_REDIS_URL"] = redis_url
        # A fresh prefix per run: counters of an earlier run cannot interfere.
        env["XYNERGY_REDIS_KEY_PREFIX"] = f"xynbench:{secrets.token_hex(4)}:"
    return env


def create_bench_key(data_dir: Path) -> str:
    """Migrate ``data_dir``'s database and return the secret of a new read key."""
    return create_bench_keys(data_dir).ping


def create_bench_keys(data_dir: Path) -> BenchKeys:
    """Migrate ``data_dir``'s database, create the bench tenant with its keys, and
    seed that tenant's keywords and rankings so trending answers a non-empty list."""
    # Explicit values win over the environment, so this is the database the
    # servers (started with platform_env) will open.
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    upgrade_to_head(settings)
    return asyncio.run(_prepare(settings))


async def _prepare(settings: Settings) -> BenchKeys:
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            tenant = await create_tenant(session, name="bench")
            ping = await create_key(
                session, tenant_id=tenant.id, name="bench", scopes=[BENCH_SCOPE]
            )
            # metrics:read: after the load the runner reads /metrics with this key.
            trending = await create_key(
                session,
                tenant_id=tenant.id,
                name="bench-trending",
                scopes=[TRENDING_SCOPE, "metrics:read"],
            )
            await _seed_rankings(session, tenant.id)
            return BenchKeys(ping=ping.secret, trending=trending.secret)
    finally:
        await engine.dispose()


async def _seed_rankings(session: AsyncSession, tenant_id: str) -> None:
    """``TRENDING_KEYWORDS`` keywords, each observed daily over the last ``TRENDING_DAYS``
    days (today included): a per-keyword drift up or down, some days not ranked."""
    today = datetime.now(UTC).date()
    keywords = [
        Keyword(
            tenant_id=tenant_id,
            phrase=f"bench keyword {number:04d}",
            locale=TRENDING_LOCALE,
            tags=["bench"],
            target_url=None,
            intent=None,
        )
        for number in range(TRENDING_KEYWORDS)
    ]
    session.add_all(keywords)
    await session.flush()  # assigns the ids the observations refer to
    observations = []
    for number, keyword in enumerate(keywords):
        drift = number % 7 - 3  # positions per day: -3 (improving) .. +3 (worsening)
        for age in range(TRENDING_DAYS):
            position = 50 + drift * (TRENDING_DAYS - age) // 2 + number % 11
            observations.append(
                RankingObservation(
                    tenant_id=tenant_id,
                    keyword_id=keyword.id,
                    engine=TRENDING_ENGINE,
                    locale=TRENDING_LOCALE,
                    # Every 13th keyword drops out of the ranking on some days.
                    position=None if number % 13 == 0 and age % 4 == 0 else max(position, 1),
                    url=None,
                    observed_on=today - timedelta(days=age),
                )
            )
    session.add_all(observations)
