"""The usage ledger: batched writes, bounded queue, retries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from structlog.testing import capture_logs

from tests.ai_routing.usage.conftest import count_events, event
from tests.helpers import ensure_tenant, metric_value
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.ledger import DROPPED_METRIC, UsageLedger
from xynergy.ai_routing.usage.models import UsageEventRow
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform

WAIT_SECONDS = 5.0


@pytest.fixture
async def db_platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    opened = await Platform.open(make_settings(database_url=database_url))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def tenant(db_platform: Platform) -> str:
    return await ensure_tenant(db_platform, "acme")


def make_ledger(platform: Platform, **ai: Any) -> UsageLedger:
    return UsageLedger(
        ai=AiSettings(**ai), sessionmaker=platform.sessionmaker, metrics=platform.metrics
    )


def dropped(platform: Platform, reason: str) -> float:
    return metric_value(
        platform.metrics.render().decode(), DROPPED_METRIC + "_total", reason=reason
    )


@contextmanager
def counting_inserts(platform: Platform) -> Iterator[list[int]]:
    """Yields a list that gets the parameter-set count of every ledger INSERT."""
    seen: list[int] = []

    def on_execute(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AI_USAGE_EVENTS"):
            seen.append(len(parameters) if many else 1)

    sync_engine = platform.engine.sync_engine
    sa_event.listen(sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        sa_event.remove(sync_engine, "before_cursor_execute", on_execute)


async def eventually(condition: Callable[[], Any]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def table_away(platform: Platform) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Ledger writes fail (the table is gone) until the yielded callable restores it."""

    async def run(statement: str) -> None:
        async with platform.engine.begin() as connection:
            await connection.execute(text(statement))

    restored = False

    async def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            await run("ALTER TABLE ai_usage_events_away RENAME TO ai_usage_events")

    await run("ALTER TABLE ai_usage_events RENAME TO ai_usage_events_away")
    try:
        yield restore
    finally:
        await restore()


class TestFlush:
    async def test_writes_every_event_in_batches_of_batch_max(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=10)
        for n in range(25):
            ledger.record(event(tenant, request_id=f"r{n}"))
        with counting_inserts(db_platform) as inserts:
            assert await ledger.flush() == 25
        assert inserts == [10, 10, 5]
        assert await count_events(db_platform, tenant) == 25
        assert ledger.pending == 0

    async def test_rows_hold_the_event(self, db_platform: Platform, tenant: str) -> None:
        ledger = make_ledger(db_platform)
        late_evening = datetime(2026, 11, 26, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        ledger.record(
            event(
                tenant,
                key_id="k" * 32,
                cost_nanos=5_000_000_000_000,
                cache_hit=True,
                deduplicated=True,
                status="error",
                occurred_at=late_evening,
                model="m" * 500,
            )
        )
        assert await ledger.flush() == 1
        async with db_platform.sessionmaker() as session:
            row = (await session.scalars(select(UsageEventRow))).one()
        assert row.occurred_at == late_evening.astimezone(UTC)
        assert row.day == date(2026, 11, 27)  # the UTC day, not the local one
        assert row.cost_nanos == 5_000_000_000_000
        assert (row.cache_hit, row.deduplicated, row.status) == (True, True, "error")
        assert row.key_id == "k" * 32
        assert row.model == "m" * 200  # clipped to the column, not refused

    async def test_nothing_queued_writes_nothing(self, db_platform: Platform) -> None:
        with counting_inserts(db_platform) as inserts:
            assert await make_ledger(db_platform).flush() == 0
        assert inserts == []

    async def test_a_failed_write_keeps_the_events_for_the_next_flush(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=2)
        for _ in range(5):
            ledger.record(event(tenant))
        async with table_away(db_platform) as restore:
            assert await ledger.flush() == 0
            assert ledger.pending == 5
            await restore()
        assert await ledger.flush() == 5
        assert await count_events(db_platform, tenant) == 5
        assert ledger.pending == 0

    async def test_rows_the_database_refuses_are_dropped_alone(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=8)
        for n in range(8):
            # An event of a tenant that no longer exists breaks the foreign key.
            ledger.record(event("f" * 32 if n == 5 else tenant))
        assert await ledger.flush() == 7
        assert await count_events(db_platform, tenant) == 7
        assert ledger.pending == 0
        assert dropped(db_platform, "refused") == 1


class TestRecord:
    async def test_a_full_queue_drops_counts_and_logs_once_per_burst(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_queue_max=3)
        with capture_logs() as logs:
            for _ in range(5):
                ledger.record(event(tenant))
        assert ledger.pending == 3
        assert dropped(db_platform, "queue_full") == 2
        assert [entry["event"] for entry in logs] == ["ai.ledger.dropping"]
        await ledger.flush()
        with capture_logs() as logs:
            for _ in range(4):
                ledger.record(event(tenant))
        assert dropped(db_platform, "queue_full") == 3
        assert [entry["event"] for entry in logs] == ["ai.ledger.dropping"]
        assert await count_events(db_platform, tenant) == 3

    async def test_record_only_queues(self, db_platform: Platform, tenant: str) -> None:
        ledger = make_ledger(db_platform)
        with counting_inserts(db_platform) as inserts:
            ledger.record(event(tenant))
        assert inserts == []
        assert ledger.pending == 1

    async def test_two_ledgers_on_one_registry_share_the_metric(
        self, db_platform: Platform
    ) -> None:
        first = make_ledger(db_platform, ledger_queue_max=1)
        second = make_ledger(db_platform, ledger_queue_max=1)
        for ledger in (first, second):
            ledger.record(event("t"))
            ledger.record(event("t"))
        assert dropped(db_platform, "queue_full") == 2


class TestBackgroundWriter:
    async def test_a_full_batch_is_written_without_waiting_for_the_interval(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=5, ledger_flush_seconds=300)
        await ledger.start()
        try:
            for _ in range(5):
                ledger.record(event(tenant))
            await eventually(lambda: _has(db_platform, tenant, 5))
        finally:
            await ledger.stop()

    async def test_a_partial_batch_is_written_after_the_interval(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_flush_seconds=0.05)
        await ledger.start()
        try:
            ledger.record(event(tenant))
            await eventually(lambda: _has(db_platform, tenant, 1))
        finally:
            await ledger.stop()

    async def test_stop_writes_everything_still_queued(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=4, ledger_flush_seconds=300)
        await ledger.start()
        for _ in range(3):
            ledger.record(event(tenant))
        await ledger.stop()
        assert await count_events(db_platform, tenant) == 3
        assert ledger.pending == 0

    async def test_the_writer_survives_failures_and_retries(
        self, db_platform: Platform, tenant: str
    ) -> None:
        ledger = make_ledger(db_platform, ledger_batch_max=2, ledger_flush_seconds=0.05)
        async with table_away(db_platform) as restore:
            await ledger.start()
            try:
                for _ in range(3):
                    ledger.record(event(tenant))
                await asyncio.sleep(0.3)  # several failed flushes
                assert ledger.pending == 3
                await restore()
                await eventually(lambda: _has(db_platform, tenant, 3))
            finally:
                await ledger.stop()
        assert ledger.pending == 0


async def _has(platform: Platform, tenant: str, expected: int) -> bool:
    return await count_events(platform, tenant) == expected
