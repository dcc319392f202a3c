"""A year of usage: spend reports read only the daily rollup, over one month's days,
with a LIMIT or as one aggregate row (issue 14, item 8).

A year of a busy platform is ~1,000,000 ledger rows; what the reports read is the
daily rollup those rows make (days x tenants x keys x models x tasks), inserted
here directly since a million ORM inserts would dominate CI. Times are printed,
never asserted (bench/dashboard_cost.py measures them).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any

import pytest
from sqlalchemy import event

from tests.ai_routing.spend_fixtures import daily_row, insert_daily
from tests.helpers import ensure_tenant
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.spend import service
from xynergy.ai_routing.usage.spend.months import Month
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.pagination import PageRequest
from xynergy.platform.runtime import Platform

pytestmark = pytest.mark.asyncio

DAYS = 365
KEYS = 5
MODELS = 4
TASKS = 3
TENANTS = 3
# What a year of ~1,000,000 ledger rows makes: ~15 events per rollup row.
LEDGER_ROWS_PER_YEAR = 1_000_000
TODAY = date(2026, 11, 20)
NOW = datetime.combine(TODAY, day_time(12), tzinfo=UTC)
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    opened = await Platform.open(make_settings(database_url=database_url))
    try:
        yield opened
    finally:
        await opened.close()


async def fill_a_year(platform: Platform) -> list[str]:
    tenants = [await ensure_tenant(platform, f"tenant-{n}") for n in range(TENANTS)]
    groups = list(itertools.product(tenants, range(KEYS), range(MODELS), range(TASKS)))
    per_row = LEDGER_ROWS_PER_YEAR // (DAYS * len(groups))
    rows = [
        daily_row(
            tenant,
            TODAY - timedelta(days=back),
            key_id=f"{key:032x}",
            model=f"model-{model}",
            task=f"task-{task}",
            requests=per_row,
            cost_nanos=per_row * 1_000,
        )
        for back in range(DAYS)
        for tenant, key, model, task in groups
    ]
    for start in range(0, len(rows), 10_000):
        await insert_daily(platform, rows[start : start + 10_000])
    return tenants


class Statements:
    """Every statement the engine sends, with its parameters."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.seen.append((statement, parameters))


def dates_in(parameters: Any) -> list[date]:
    """The days bound to a statement (SQLite's driver gets them as ISO strings)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters or ()
    days = []
    for value in values:
        if isinstance(value, date):
            days.append(value)
        elif isinstance(value, str) and ISO_DAY.fullmatch(value):
            days.append(date.fromisoformat(value))
    return days


class TestAYearOfUsage:
    async def test_reports_read_the_rollup_over_a_bounded_day_range(
        self, platform: Platform
    ) -> None:
        tenants = await fill_a_year(platform)
        operator = AuthContext(
            tenant_id=tenants[0],
            key_id="k" * 32,
            key_tenant_id=tenants[0],
            scopes=frozenset({"admin"}),
        )
        month = Month.of(TODAY)
        now = platform_now = None  # noqa: F841 - named for the reader below
        from datetime import UTC, datetime
        from datetime import time as day_time

        now = datetime.combine(TODAY, day_time(12), tzinfo=UTC)
        statements = Statements()
        sync_engine = platform.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", statements)
        timings: dict[str, float] = {}
        try:
            async with platform.sessionmaker() as session:
                for name, tenant in (("tenant", tenants[1]), ("platform", None)):
                    started = time.perf_counter()
                    report = await service.spend_report(
                        session, tenant_id=tenant, month=month, now=now, ai=AiSettings()
                    )
                    timings[name] = time.perf_counter() - started
                    assert report.totals.requests > 0
                started = time.perf_counter()
                items, _ = await service.tenants_page(
                    session, auth=operator, month=month, now=now, page=PageRequest(50, None)
                )
                timings["tenants"] = time.perf_counter() - started
        finally:
            event.remove(sync_engine, "before_cursor_execute", statements)
        print(  # noqa: T201 - the figures, never asserted
            f"\n{platform.settings.database_url.split(':')[0]}: "
            + ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in timings.items())
        )
        assert len(items) == TENANTS
        rollup = [(sql, params) for sql, params in statements.seen if "ai_usage_daily" in sql]
        assert rollup, "the reports read the rollup"
        assert not [sql for sql, _ in statements.seen if "ai_usage_events" in sql]
        for sql, params in rollup:
            flat = " ".join(sql.split())
            assert "ai_usage_daily.day >=" in flat, flat
            assert "ai_usage_daily.day <=" in flat, flat
            aggregate_only = "GROUP BY" not in flat and "sum(" in flat.lower()
            assert "LIMIT" in flat or aggregate_only, flat
            days = dates_in(params)
            assert days, (flat, params)
            assert max(days) - min(days) <= timedelta(days=30), (flat, params)
