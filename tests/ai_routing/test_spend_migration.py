"""Revision 0015 rolls up the ledger rows written before it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from xynergy.platform.db.migrate import alembic_config

TENANTS = sa.table("tenants", sa.column("id"), sa.column("name"), sa.column("created_at"))
EVENT_COLUMNS = (
    "id",
    "tenant_id",
    "key_id",
    "request_id",
    "task",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "cache_hit",
    "deduplicated",
    "latency_ms",
    "status",
    "occurred_at",
    "day",
)
EVENTS = sa.table("ai_usage_events", *(sa.column(name) for name in EVENT_COLUMNS))
DAILY = sa.table(
    "ai_usage_daily",
    *(
        sa.column(name)
        for name in ("tenant_id", "day", "key_id", "model", "task", "requests", "input_tokens")
    ),
    *(sa.column(name) for name in ("cost_nanos", "saved_nanos", "cache_hits", "errors")),
)


def _event(number: int, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"{number:032x}",
        "tenant_id": "t" * 32,
        "key_id": None,
        "request_id": f"req-{number}",
        "task": "chat",
        "model": "m",
        "provider": "offline",
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_nanos": 100,
        "cache_hit": False,
        "deduplicated": False,
        "latency_ms": 1,
        "status": "ok",
        "occurred_at": datetime(2026, 11, 3, tzinfo=UTC),
        "day": date(2026, 11, 3),
    }
    values.update(fields)
    return values


def _run(url: str, work: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                return await work(connection)
        finally:
            await engine.dispose()

    return asyncio.run(run())


class TestBackfill:
    def test_existing_ledger_rows_are_summed_into_the_daily_rollup(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
        config = alembic_config(url)
        command.upgrade(config, "0014")
        rows = [
            _event(1),
            _event(2, cost_nanos=50, cache_hit=True),
            _event(3, key_id="k" * 32, status="error"),
            _event(4, day=date(2026, 11, 4)),
        ]

        async def seed(connection: Any) -> None:
            now = datetime(2026, 11, 1, tzinfo=UTC)
            await connection.execute(
                TENANTS.insert(), [{"id": "t" * 32, "name": "acme", "created_at": now}]
            )
            await connection.execute(EVENTS.insert(), rows)

        _run(url, seed)
        command.upgrade(config, "0015")

        async def read(connection: Any) -> list[Any]:
            query = sa.select(DAILY).order_by(DAILY.c.day, DAILY.c.key_id)
            return list((await connection.execute(query)).all())

        daily = _run(url, read)
        # Untyped columns: SQLite hands days back as the ISO text it stores.
        assert [tuple(row) for row in daily] == [
            ("t" * 32, "2026-11-03", "", "m", "chat", 2, 20, 150, 0, 1, 0),
            ("t" * 32, "2026-11-03", "k" * 32, "m", "chat", 1, 10, 100, 0, 0, 1),
            ("t" * 32, "2026-11-04", "", "m", "chat", 1, 10, 100, 0, 0, 0),
        ]
        command.downgrade(config, "0014")
