"""Spend reports with a year of data: the daily rollup against the ledger (issue 14, item 8).

    .venv/bin/python bench/dashboard_cost.py [--iterations 300] [--postgres-url URL]

A fresh SQLite file (and, with ``--postgres-url``, that PostgreSQL database: give
the bench a database of its own, its ``ai_usage_*`` tables are emptied first) is migrated and filled with the daily
rollup a year of ~1,000,000 ledger rows makes (3 tenants x 5 keys x 4 models x
3 tasks x 365 days), plus the measured month's share of those ledger rows
(~83,000 events), so the baseline can read them.

Rows, per database, timed in process on one session (server time, no HTTP):

* ``ledger GROUP BY (baseline)``: one tenant's month summed per day, model and
  task straight from the events, as ``GET /api/usage`` does;
* ``tenant report``: ``GET /api/spend``'s work (totals, days, models, tasks,
  keys, budgets) from the rollup;
* ``platform report``: the operator's whole-platform view;
* ``tenants page``: ``GET /api/spend/tenants``, 50 per page.

``ratio`` is the row's p50 over the baseline's. The overview page's goal
(p99 <= 100 ms) is printed, never asserted.

After the fill, PostgreSQL's tables are vacuumed and analysed, as autovacuum leaves
a database in use: measured right after a bulk load (and the DELETE of the last
run's rows), autovacuum ran during the timing and the planner had no statistics,
which put one 182.8 ms sample into a 30-sample p99 (bench/README.md, Issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, text

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.models import UsageDailyRow, UsageEventRow
from xynergy.ai_routing.usage.repository import UsageRepository
from xynergy.ai_routing.usage.spend import service
from xynergy.ai_routing.usage.spend.months import Month
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.pagination import PageRequest
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service as tenancy

TENANTS, KEYS, MODELS, TASKS, DAYS = 3, 5, 4, 3, 365
LEDGER_ROWS_PER_YEAR = 1_000_000
TODAY = date(2026, 11, 28)
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
GOAL_P99_MS = 100.0
_CHUNK = 10_000


async def _fill(platform: Platform) -> list[str]:
    async with unit_of_work(platform.sessionmaker) as session:
        await session.execute(delete(UsageDailyRow))
        await session.execute(delete(UsageEventRow))
    tenants = []
    for number in range(TENANTS):
        async with unit_of_work(platform.sessionmaker) as session:
            name = f"bench-cost-{number}-{new_id()[:8]}"
            tenants.append((await tenancy.create_tenant(session, name=name)).id)
    groups = list(itertools.product(tenants, range(KEYS), range(MODELS), range(TASKS)))
    per_row = LEDGER_ROWS_PER_YEAR // (DAYS * len(groups))
    daily = [
        {
            "tenant_id": tenant,
            "day": TODAY - timedelta(days=back),
            "key_id": f"{key:032x}",
            "model": f"model-{model}",
            "task": f"task-{task}",
            "requests": per_row,
            "input_tokens": per_row * 500,
            "output_tokens": per_row * 200,
            "cost_nanos": per_row * 1_000_000,
            "saved_nanos": per_row * 100_000,
            "cache_hits": per_row // 5,
            "deduplicated": 0,
            "errors": 0,
        }
        for back in range(DAYS)
        for tenant, key, model, task in groups
    ]
    month = Month.of(TODAY)
    events = [
        {
            "id": new_id(),
            "tenant_id": row["tenant_id"],
            "key_id": row["key_id"],
            "request_id": "bench",
            "task": row["task"],
            "model": row["model"],
            "provider": "offline",
            "input_tokens": 500,
            "output_tokens": 200,
            "cost_nanos": 1_000_000,
            "saved_nanos": 0,
            "cache_hit": False,
            "deduplicated": False,
            "latency_ms": 1,
            "status": "ok",
            "occurred_at": datetime.combine(row["day"], datetime.min.time(), tzinfo=UTC),
            "day": row["day"],
        }
        for row in daily
        if row["day"] >= month.first
        for _ in range(per_row)
    ]
    for rows, table in ((daily, UsageDailyRow.__table__), (events, UsageEventRow.__table__)):
        for start in range(0, len(rows), _CHUNK):
            async with unit_of_work(platform.sessionmaker) as session:
                await session.execute(insert(table), rows[start : start + _CHUNK])
    print(f"  filled {len(daily):,} rollup rows, {len(events):,} ledger rows", file=sys.stderr)
    if platform.engine.dialect.name == "postgresql":
        async with platform.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            for name in (UsageDailyRow.__tablename__, UsageEventRow.__tablename__):
                vacuum = f"VACUUM ANALYZE {name}"  # guard: allow XG001 model names
                await connection.execute(text(vacuum))
    return tenants


async def _time(work: Callable[[], Awaitable[Any]], iterations: int) -> list[float]:
    for _ in range(3):  # warm-up: statement caches, pages in memory
        await work()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _measure(settings: Settings, iterations: int) -> dict[str, list[float]]:
    platform = await Platform.open(settings)
    try:
        tenants = await _fill(platform)
        month, ai = Month.of(TODAY), AiSettings()
        admin = AuthContext(
            tenant_id=tenants[0],
            key_id="0" * 32,
            key_tenant_id=tenants[0],
            scopes=frozenset({"admin"}),
        )
        async with platform.sessionmaker() as session:

            async def ledger() -> Any:
                return await UsageRepository(session).grouped(tenants[1], month.first, TODAY, 5_001)

            async def tenant() -> Any:
                return await service.spend_report(
                    session, tenant_id=tenants[1], month=month, now=NOW, ai=ai
                )

            async def whole() -> Any:
                return await service.spend_report(
                    session, tenant_id=None, month=month, now=NOW, ai=ai
                )

            async def page() -> Any:
                return await service.tenants_page(
                    session, auth=admin, month=month, now=NOW, page=PageRequest(50, None)
                )

            return {
                "ledger GROUP BY (baseline)": await _time(ledger, iterations),
                "tenant report": await _time(tenant, iterations),
                "platform report": await _time(whole, iterations),
                "tenants page": await _time(page, iterations),
            }
    finally:
        await platform.close()


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _table(database: str, results: dict[str, list[float]]) -> str:
    base = statistics.median(next(iter(results.values())))
    lines = [
        f"{database}",
        f"{'variant':<28}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'ratio':>8}",
    ]
    for name, samples in results.items():
        p50 = statistics.median(samples)
        p95, p99 = _percentile(samples, 0.95), _percentile(samples, 0.99)
        lines.append(f"{name:<28}{p50:>10.2f}{p95:>10.2f}{p99:>10.2f}{p50 / base:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Enough samples that p99 is not simply the slowest one.
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args(argv)
    for name in [name for name in os.environ if name.startswith("XYNERGY_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory() as data_dir:
        urls = {"sqlite": f"sqlite+aiosqlite:///{Path(data_dir) / 'cost.db'}"}
        if args.postgres_url:
            urls["postgresql"] = args.postgres_url
        for database, url in urls.items():
            print(f"[{database}] filling a year ...", file=sys.stderr)
            settings = Settings(
                environment="test", data_dir=Path(data_dir), database_url=url, access_log=False
            )
            upgrade_to_head(settings)  # runs its own event loop
            results = asyncio.run(_measure(settings, args.iterations))
            print(_table(database, results))
            print()
    print(f"goal: a page's report p99 <= {GOAL_P99_MS:.0f} ms (informational, never asserted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
