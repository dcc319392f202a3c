"""Fast with a year of data (issue 14, item 8): the pages' statements are bounded and
use indexes.

A module fixture fills, once per database, 1,000,000 AI ledger events (and their
daily rollup) and 525,600 minutes of each rollup table (``year_fill``), then calls
over HTTP every API the overview, traffic, AI and cache pages call
(``platform/static/dashboard.js``), as an operator and as a tenant, for each range
(1 h, 24 h, 7 d, 30 d), and records every statement the engines execute. The
tests then read that record: each statement on a big table is bounded, and its
plan (SQLite's ``EXPLAIN QUERY PLAN``, PostgreSQL's ``EXPLAIN``) scans no big
table whole.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import INTERNAL_SECRET, _empty_tables
from tests.platform_dashboard.harness import DashboardApi, all_in_one
from tests.platform_dashboard.year_fill import (
    BIG_TABLES,
    LEDGER_ROWS,
    MODELS,
    NAMESPACES,
    ROLLUP_MINUTES,
    fill_year_before_start,
    year_end,
)
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow

# The page's ranges (seconds) and their chart steps (dashboard.js STEPS).
RANGES = {3600: 60, 86_400: 900, 604_800: 3600, 2_592_000: 21_600}
# The filled tables, and rollup tables the fill leaves empty but a page may read.
CHECKED_TABLES = (*BIG_TABLES, "platform_rate_limit_rollups")
_BIG = "|".join(CHECKED_TABLES)
_FROM_BIG = re.compile(rf"\b(?:FROM|JOIN)\s+({_BIG})\b", re.IGNORECASE)
# The indexed time column of each big table, compared from both sides.
_TIME_COLUMN = {
    "ai_usage_events": "day",
    "ai_usage_daily": "day",
    "platform_request_rollups": "minute",
    "platform_cache_rollups": "minute",
    "platform_ai_rollups": "minute",
    "platform_rate_limit_rollups": "minute",
}
_AGGREGATE = re.compile(r"\b(?:sum|count|min|max|avg)\s*\(", re.IGNORECASE)
_LIMIT = re.compile(r"\bLIMIT\b", re.IGNORECASE)
_GROUP_BY = re.compile(r"\bGROUP BY\b", re.IGNORECASE)


@dataclass
class Statement:
    sql: str
    parameters: tuple[Any, ...]

    @property
    def big_tables(self) -> set[str]:
        return {match.lower() for match in _FROM_BIG.findall(self.sql)}


@dataclass
class YearOfData:
    database_url: str
    calls: list[tuple[str, int]] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)

    def on_big_tables(self) -> list[Statement]:
        unique: dict[tuple[str, str], Statement] = {}
        for statement in self.statements:
            if statement.big_tables:
                unique.setdefault((statement.sql, repr(statement.parameters)), statement)
        return list(unique.values())


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _series_calls(end: int, tenant: str) -> list[tuple[str, dict[str, str]]]:
    """(path, params) of every series read of the four pages, per range."""
    month_start = int(datetime.fromtimestamp(end, UTC).replace(day=1, hour=0, minute=0).timestamp())
    calls = []
    for span, step in RANGES.items():
        window = {"from": _iso(end - span), "to": _iso(end)}

        def read(
            metric: str,
            whole: bool = False,
            window: dict[str, str] = window,
            span: int = span,
            step: int = step,
            **filters: str,
        ) -> None:
            params = {"metric": metric, **window, "step": str(span if whole else step)}
            calls.append(("/api/metrics/series", params | filters))

        for metric in ("requests", "errors_5xx", "latency_p50", "latency_p95", "latency_p99"):
            read(metric)
            read(metric, service="aso-engine")
        for metric in ("requests", "error_rate", "latency_p99", "cache_hit_rate"):
            read(metric, whole=True)
        for metric in ("requests", "error_rate", "latency_p99"):
            read(metric, whole=True, service="ai-routing-engine")
        for metric in ("cache_hit_rate", "cache_hits", "cache_misses"):
            read(metric)
            read(metric, namespace=NAMESPACES[0])
        for metric in ("ai_tokens", "ai_cost_usd", "ai_cache_hits"):
            read(metric)
            read(metric, tenant=tenant)
        for model in range(MODELS - 1):
            read("ai_tokens", model=f"model-{model}")
    # The spend figures' fallback when the engine is down: today and the month so far.
    midnight = end - end % 86_400
    for since in (midnight, month_start):
        calls.append(
            (
                "/api/metrics/series",
                {
                    "metric": "ai_cost_usd",
                    "from": _iso(since),
                    "to": _iso(end),
                    "step": str(end - since),
                },
            )
        )
    return calls


async def _call_every_page_api(api: DashboardApi, year: YearOfData, tenant: str) -> None:
    end = int(year_end(utcnow()).timestamp())
    reads: list[tuple[str, dict[str, str]]] = [
        ("/api/viewer", {}),
        ("/api/status", {}),
        ("/api/resources", {}),
        ("/api/alerts", {"limit": "200"}),
        ("/api/cost", {}),
        ("/api/cost", {"tenant": tenant}),
        ("/api/cost/tenants", {"limit": "200"}),
        *_series_calls(end, tenant),
    ]
    for path, params in reads:
        response = await api.client.get(api.prefix + path, params=params, headers=api.operator)
        year.calls.append((f"operator {path} {params}", response.status_code))
    # A tenant's reader: its own AI spend on the overview and AI pages.
    for path, params in [("/api/cost", {}), ("/api/alerts", {"limit": "200"})] + [
        (path, {k: v for k, v in params.items() if k != "tenant"})
        for path, params in _series_calls(end, tenant)
        if params["metric"].startswith("ai_")
    ]:
        response = await api.client.get(api.prefix + path, params=params, headers=api.reader)
        year.calls.append((f"reader {path} {params}", response.status_code))


async def _fill_and_read(settings: Settings) -> YearOfData:
    year = YearOfData(database_url=str(settings.database_url))
    fill = await fill_year_before_start(
        year.database_url, tenant_names=("acme", "globex", "initech"), end=year_end(utcnow())
    )
    async with all_in_one(settings) as api:

        def record(
            _conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool
        ) -> None:
            if not many:
                year.statements.append(Statement(sql, tuple(parameters or ())))

        # Every engine of the process (the services of one app may hold their own).
        event.listen(Engine, "before_cursor_execute", record)
        try:
            await _call_every_page_api(api, year, fill.tenants[0])
        finally:
            event.remove(Engine, "before_cursor_execute", record)
    return year


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        internal_token_secret=INTERNAL_SECRET,
        access_log=False,
        gc_freeze_after_startup=False,
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def year(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[YearOfData]:
    """A year of data, filled once per database, and the statements the pages ran."""
    data_dir = tmp_path_factory.mktemp("year-of-data")
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = data_dir / "xynergy.db"
        shutil.copy(template, target)
        shutil.copy(template.with_suffix(".dbos.sqlite"), target.with_suffix(".dbos.sqlite"))
        yield asyncio.run(_fill_and_read(_settings(f"sqlite+aiosqlite:///{target}", data_dir)))
        return
    url = request.getfixturevalue("postgres_url")
    try:
        yield asyncio.run(_fill_and_read(_settings(url, data_dir)))
    finally:
        asyncio.run(_empty_tables(url))


async def _plans(year: YearOfData) -> list[tuple[Statement, list[str]]]:
    engine = create_async_engine(year.database_url)
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    plans = []
    try:
        async with engine.connect() as connection:
            for statement in year.on_big_tables():
                result = await connection.exec_driver_sql(
                    prefix + statement.sql, statement.parameters
                )
                # PostgreSQL: one text line per row; SQLite: (id, parent, notused, detail).
                rows: list[Any] = list(result)
                plans.append((statement, [str(row[0] if postgres else row[3]) for row in rows]))
    finally:
        await engine.dispose()
    return plans


def _full_scans(plan: list[str]) -> list[str]:
    seq_scan = re.compile(rf"Seq Scan on ({_BIG})\b")
    # SQLite: "SCAN t" (a SEARCH uses an index range); a covering index SCAN reads it whole too.
    sqlite_scan = re.compile(rf"^SCAN ({_BIG})\b")
    return [line for line in plan if seq_scan.search(line) or sqlite_scan.match(line.strip())]


def _unbounded(statement: Statement) -> str | None:
    """Why ``statement`` is not bounded, or None: a LIMIT bounds it; else it must be an
    aggregate without GROUP BY over a bounded range of each big table's time column."""
    if _LIMIT.search(statement.sql):
        return None
    if not _AGGREGATE.search(statement.sql) or _GROUP_BY.search(statement.sql):
        return "no LIMIT, and not a single-row aggregate"
    for table in statement.big_tables:
        column = rf"{table}\.{_TIME_COLUMN[table]}"
        if not (
            re.search(column + r"\s*>=?", statement.sql)
            and re.search(column + r"\s*<=?", statement.sql)
        ):
            return f"no LIMIT, and {table}.{_TIME_COLUMN[table]} is not bounded on both sides"
    return None


class TestYearOfData:
    async def test_the_fill_is_a_year(self, year: YearOfData) -> None:
        engine = create_async_engine(year.database_url)
        try:
            async with engine.connect() as connection:
                counts = {
                    table: (
                        await connection.execute(text(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
                    ).scalar_one()
                    for table in (
                        "ai_usage_events",
                        "platform_request_rollups",
                        "platform_ai_rollups",
                    )
                }
        finally:
            await engine.dispose()
        assert counts["ai_usage_events"] == LEDGER_ROWS
        # The app's own recorder adds the minutes of the test's requests.
        assert counts["platform_request_rollups"] >= ROLLUP_MINUTES
        assert counts["platform_ai_rollups"] >= ROLLUP_MINUTES

    def test_every_page_api_answers(self, year: YearOfData) -> None:
        failed = [(call, status) for call, status in year.calls if status != 200]
        assert not failed, failed
        assert len(year.calls) > 150  # the four pages, four ranges, two readers

    def test_the_pages_read_the_big_tables(self, year: YearOfData) -> None:
        read = set().union(*(statement.big_tables for statement in year.statements))
        assert read >= {
            "ai_usage_daily",
            "platform_request_rollups",
            "platform_cache_rollups",
            "platform_ai_rollups",
        }
        # The ledger's events are never read by a page: the daily rollup answers.
        assert "ai_usage_events" not in read

    def test_every_statement_on_a_big_table_is_bounded(self, year: YearOfData) -> None:
        unbounded = [
            (reason, statement.sql)
            for statement in year.on_big_tables()
            if (reason := _unbounded(statement)) is not None
        ]
        assert not unbounded, "\n\n".join(f"{reason}:\n{sql}" for reason, sql in unbounded)

    async def test_no_statement_scans_a_big_table_whole(self, year: YearOfData) -> None:
        plans = await _plans(year)
        assert plans
        scans = [
            (statement.sql, scans) for statement, plan in plans if (scans := _full_scans(plan))
        ]
        assert not scans, "\n\n".join(f"{sql}\n-> {lines}" for sql, lines in scans)
