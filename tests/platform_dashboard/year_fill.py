# ruff: noqa: S608
# (S608: the SQL here is put together from this module's constants and generated
# column lists; every value the caller gives is a bound parameter.)
"""A year of data in set-based SQL: 1,000,000 AI ledger events (and the daily rollup
they make) and 525,600 minutes of each per-minute rollup table.

Shared by ``test_year_of_data.py`` and ``bench/dashboard_overview.py``. One
``INSERT ... SELECT`` per table over a generated integer sequence (SQLite's
``WITH RECURSIVE``, PostgreSQL's ``generate_series``): a year fills in seconds,
where a Python loop of row dicts would take minutes.

Row ``i`` of the ledger: tenant ``i % 3``, key ``(i / 3) % 5``, model ``(i / 15) % 4``,
task ``(i / 60) % 3`` and day ``(i / 180) % 365`` back from ``end``, so the daily
rollup has 3 x 5 x 4 x 3 x 365 = 65,700 rows, as a busy year would. Minute ``i``
of the rollups is ``end_minute - i``: one row per minute per table, the newest
ending at ``end``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS
from xynergy.platform.tenancy.service import create_tenant

__all__ = [
    "BIG_TABLES",
    "LEDGER_ROWS",
    "ROLLUP_MINUTES",
    "SERVICES",
    "YearFill",
    "fill_year",
    "fill_year_before_start",
    "year_end",
]

LEDGER_ROWS = 1_000_000
ROLLUP_MINUTES = 525_600  # 365 x 24 x 60
DAYS = 365
MODELS = 4
SERVICES = ("ai-routing-engine", "aso-engine", "platform-dashboard")
NAMESPACES = ("ai-answers", "status")
BIG_TABLES = (
    "ai_usage_events",
    "ai_usage_daily",
    "platform_request_rollups",
    "platform_cache_rollups",
    "platform_ai_rollups",
)
_LEDGER_COLUMNS = (
    "id, tenant_id, key_id, request_id, task, model, provider, input_tokens, output_tokens, "
    "cost_nanos, saved_nanos, cache_hit, deduplicated, latency_ms, status, occurred_at, day"
)
_SUMS = "requests, input_tokens, output_tokens, cost_nanos, saved_nanos, cache_hits, deduplicated, errors"
_HOT_BUCKET = len(BUCKET_COLUMNS) // 3  # every request in one latency bucket (a few ms)


@dataclass(frozen=True, slots=True)
class YearFill:
    """What was filled: the tenants of the ledger and the AI rollups, and the end."""

    tenants: tuple[str, str, str]
    end: datetime


def _pick(options: Sequence[str], index: str) -> str:
    """``CASE index WHEN 0 THEN :o0 ...``: one of ``options`` by an integer expression."""
    whens = " ".join(f"WHEN {number} THEN :o{number}" for number in range(len(options) - 1))
    return f"CASE {index} {whens} ELSE :o{len(options) - 1} END"


def _options(options: Sequence[str]) -> dict[str, str]:
    return {f"o{number}": value for number, value in enumerate(options)}


class _Dialect:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    def numbers(self, count_param: str) -> tuple[str, str]:
        """(a WITH prefix, a FROM item) giving ``i`` in ``0 .. :count - 1``."""
        if self.postgres:
            return "", f"generate_series(0, :{count_param} - 1) AS n(i)"
        prefix = (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL "
            f"SELECT i + 1 FROM n WHERE i < :{count_param} - 1) "
        )
        return prefix, "n"

    def hex32(self, expression: str) -> str:
        if self.postgres:
            return f"lpad(to_hex({expression}), 32, '0')"
        return f"printf('%032x', {expression})"

    def day_back(self, days: str) -> str:
        if self.postgres:
            return f"(CAST(:end AS date) - {days})"
        return f"date(:end, '-' || ({days}) || ' days')"

    def noon_back(self, days: str) -> str:
        if self.postgres:
            return f"(CAST(:end AS date) - {days} + time '12:00') AT TIME ZONE 'UTC'"
        # SQLAlchemy's SQLite DateTime text form.
        return (
            f"datetime(:end, '-' || ({days}) || ' days', 'start of day', '+12 hours') || '.000000'"
        )

    def false(self) -> str:
        return "false" if self.postgres else "0"


async def _ledger(connection: AsyncConnection, sql: _Dialect, fill: YearFill) -> None:
    prefix, numbers = sql.numbers("count")
    days = f"((i / 180) % {DAYS})"
    select = (
        f"SELECT {sql.hex32('i')}, {_pick(fill.tenants, 'i % 3')}, {sql.hex32('(i / 3) % 5')}, "
        f"'year-fill', 'task-' || ((i / 60) % 3), 'model-' || ((i / 15) % {MODELS}), 'offline', "
        f"500, 200, 1000000, 100000, {sql.false()}, {sql.false()}, 12, 'ok', "
        f"{sql.noon_back(days)}, {sql.day_back(days)} FROM {numbers}"
    )
    statement = f"{prefix}INSERT INTO ai_usage_events ({_LEDGER_COLUMNS}) {select}"
    if not sql.postgres:  # SQLite: the CTE belongs to the SELECT of an INSERT
        statement = f"INSERT INTO ai_usage_events ({_LEDGER_COLUMNS}) {prefix}{select}"
    # asyncpg wants a date for CAST(:end AS date); SQLite's date() a string.
    end = fill.end.date() if sql.postgres else fill.end.date().isoformat()
    await connection.execute(
        text(statement), {"count": LEDGER_ROWS, "end": end, **_options(fill.tenants)}
    )
    # The daily rollup the ledger writer keeps beside the events.
    await connection.execute(
        text(
            f"INSERT INTO ai_usage_daily (tenant_id, day, key_id, model, task, {_SUMS}) "
            "SELECT tenant_id, day, COALESCE(key_id, ''), model, task, COUNT(*), "
            "SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos), SUM(saved_nanos), "
            "0, 0, 0 FROM ai_usage_events GROUP BY tenant_id, day, key_id, model, task"
        )
    )


async def _rollups(connection: AsyncConnection, sql: _Dialect, fill: YearFill) -> None:
    prefix, numbers = sql.numbers("count")
    end_minute = int(fill.end.timestamp()) // 60
    buckets = ", ".join(BUCKET_COLUMNS)
    bucket_values = ", ".join(
        "10" if index == _HOT_BUCKET else "0" for index in range(len(BUCKET_COLUMNS))
    )
    tables = {
        "platform_request_rollups": (
            "minute, replica_id, service, method, route, requests, errors_4xx, errors_5xx, "
            f"rate_limited, latency_sum_us, {buckets}",
            f"{_pick(SERVICES, 'i % 3')}, 'GET', '/api/items/{{id}}', 10, 1, i % 2, 0, 50000, "
            f"{bucket_values}",
            SERVICES,
        ),
        "platform_cache_rollups": (
            "minute, replica_id, namespace, hits, misses",
            f"{_pick(NAMESPACES, 'i % 2')}, 8, 2",
            NAMESPACES,
        ),
        "platform_ai_rollups": (
            "minute, replica_id, tenant_id, model, requests, errors, cache_hits, "
            "input_tokens, output_tokens, cost_nanos",
            f"{_pick(fill.tenants, 'i % 3')}, 'model-' || (i % {MODELS}), 3, 0, 1, 1500, 600, "
            "3000000",
            fill.tenants,
        ),
    }
    for table, (columns, values, options) in tables.items():
        select = f"SELECT :end_minute - i, 'year-fill', {values} FROM {numbers}"
        statement = f"{prefix}INSERT INTO {table} ({columns}) {select}"
        if not sql.postgres:
            statement = f"INSERT INTO {table} ({columns}) {prefix}{select}"
        parameters = {"count": ROLLUP_MINUTES, "end_minute": end_minute, **_options(options)}
        await connection.execute(text(statement), parameters)


async def _skip_foreign_key_checks(connection: AsyncConnection) -> None:
    """The tenants are known to exist: skip 1.5 million foreign-key trigger calls
    (a third of the fill) where the role may (a superuser, as the test server's)."""
    role = await connection.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    )
    if role.scalar():
        await connection.execute(text("SET LOCAL session_replication_role = replica"))


async def fill_year(engine: AsyncEngine, *, tenants: Sequence[str], end: datetime) -> YearFill:
    """Fill a year ending at ``end`` (the tenants must exist); statistics refreshed after."""
    if len(tenants) != 3:
        raise ValueError("the fill spreads its rows over exactly three tenants")
    fill = YearFill(tenants=(tenants[0], tenants[1], tenants[2]), end=end)
    sql = _Dialect(engine.dialect.name)
    async with engine.begin() as connection:
        if sql.postgres:
            await _skip_foreign_key_checks(connection)
        await _ledger(connection, sql, fill)
        await _rollups(connection, sql, fill)
    # What autovacuum (PostgreSQL) would do after a year of inserts; SQLite keeps
    # its default planner (no sqlite_stat1), as a deployment that never ran ANALYZE.
    if sql.postgres:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in BIG_TABLES:
                await connection.execute(text(f"ANALYZE {table}"))
    return fill


def year_end(now: datetime) -> datetime:
    """The start of the minute after ``now``: the page's windows end there."""
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def fill_year_before_start(
    database_url: str, *, tenant_names: Sequence[str], end: datetime
) -> YearFill:
    """Create the tenants and fill a year before the app starts: on SQLite the fill is
    one long write, which the app's background writers (outbox, rollups) would wait
    on and log as failures."""
    engine = create_async_engine(database_url)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            tenants = [(await create_tenant(session, name=name)).id for name in tenant_names]
        return await fill_year(engine, tenants=tenants, end=end)
    finally:
        await engine.dispose()
