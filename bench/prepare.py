"""A throwaway data dir: migrated SQLite database, one tenant, one read-only key."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from apps import BENCH_SCOPE
from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy.service import create_key, create_tenant

__all__ = ["create_bench_key", "platform_env", "scrubbed_env"]

# Far above anything one process can serve in an hour: the limiter still counts
# every request (that cost is what we measure) but never rejects one.
HUGE_LIMIT = "1000000000/hour"


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
    # Explicit values win over the environment, so this is the database the
    # servers (started with platform_env) will open.
    settings = Settings(data_dir=data_dir, database_url=None, redis_url=None)
    upgrade_to_head(settings)
    return asyncio.run(_create_key(settings))


async def _create_key(settings: Settings) -> str:
    engine = create_engine_from_settings(settings)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            tenant = await create_tenant(session, name="bench")
            issued = await create_key(
                session, tenant_id=tenant.id, name="bench", scopes=[BENCH_SCOPE]
            )
            return issued.secret
    finally:
        await engine.dispose()
