"""Keyset vs offset pagination over N content rows: p50/p99 of page 1 and a deep page.

Fills a fresh, migrated database with one tenant and N content pieces (default
1,000,000) by Core ``INSERT`` executemany, then times the newest-first content
list at page size 100:

* keyset: ``ContentRepository.page_by_created`` (the repository call behind
  ``GET /api/content``, below its cache) for page 1 (no cursor) and for the
  deep page (default 10,000), whose cursor is built directly from the last row
  of the page before it with ``encode_cursor`` and decoded per request with
  ``decode_cursor`` into ``PageParams``, as the endpoint does;
* offset: the same filter and order with ``OFFSET (page - 1) * 100``, for contrast.

Each query runs in a new session, like a request, after a few warm-ups; the
four queries take turns, each up to ``--iterations`` runs or ``--max-seconds``
of its own time, whichever comes first. The keyset and offset pages are checked
to hold the same rows.

    .venv/bin/python bench/pagination.py [--rows 1000000] [--page 10000] [--postgres URL] [--json]

``--postgres`` takes an admin URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a throwaway database is created next to it and dropped afterwards, even on error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from xynergy.aso_engine.content.repository import ContentRepository
from xynergy.aso_engine.content.schemas import ContentFilters
from xynergy.aso_engine.models import ContentPiece
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.pagination import PageParams, decode_cursor, encode_cursor
from xynergy.platform.tenancy.models import Tenant

GOAL_RATIO = 1.5
PAGE_SIZE = 100
BATCH_ROWS = 10_000
WARMUPS = 5
STATUSES = ("draft", "review", "scheduled", "published", "archived")
PRIORITIES = (("low", 0), ("normal", 1), ("high", 2), ("urgent", 3))
BODY = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
CONTENT_TABLE = cast(Table, ContentPiece.__table__)
TENANT_TABLE = cast(Table, Tenant.__table__)


@dataclass(frozen=True, slots=True)
class Timing:
    database: str
    method: str
    page: int
    runs: int
    p50_ms: float
    p99_ms: float


def _created_at(index: int) -> datetime:
    # Strictly increasing with the insertion index: row i is the i-th oldest.
    return BASE_TIME + timedelta(milliseconds=10 * index)


async def fill(
    engine: AsyncEngine, rows: int, cursor_index: int
) -> tuple[str, tuple[datetime, str], float]:
    """Insert a tenant and ``rows`` pieces; (tenant id, cursor row, seconds)."""
    tenant_id = uuid.uuid4().hex
    async with engine.begin() as connection:
        await connection.execute(
            insert(TENANT_TABLE),
            [{"id": tenant_id, "name": "bench-" + tenant_id[:8], "created_at": BASE_TIME}],
        )
    # The cursor row in insertion order (row i is newest-first position rows-1-i).
    cursor_row: tuple[datetime, str] | None = None
    started = time.perf_counter()
    for start in range(0, rows, BATCH_ROWS):
        batch: list[dict[str, Any]] = []
        for index in range(start, min(start + BATCH_ROWS, rows)):
            moment = _created_at(index)
            priority, rank = PRIORITIES[index % 4]
            row_id = uuid.uuid4().hex
            if index == cursor_index:
                cursor_row = (moment, row_id)
            batch.append(
                {
                    "id": row_id,
                    "tenant_id": tenant_id,
                    "title": f"Content piece {index}",
                    "body": BODY,
                    "status": STATUSES[index % 5],
                    "priority": priority,
                    "priority_rank": rank,
                    "target_keywords": ["bench", f"kw {index % 97}"],
                    "author": "bench",
                    "created_at": moment,
                    "updated_at": moment,
                }
            )
        async with engine.begin() as connection:
            await connection.execute(insert(CONTENT_TABLE), batch)
        if start and start % 200_000 == 0:
            print(f"  {start:,} rows", file=sys.stderr)
    seconds = time.perf_counter() - started
    if cursor_row is None:
        raise SystemExit("--page is beyond the last page of --rows")
    return tenant_id, cursor_row, seconds


Query = Callable[[AsyncSession], Awaitable[Sequence[ContentPiece]]]


async def _time(
    sessionmaker: async_sessionmaker[AsyncSession],
    queries: Sequence[Query],
    iterations: int,
    max_seconds: float,
) -> tuple[list[list[float]], list[list[str]]]:
    """Latencies (ms) of each query, each run in a new session, and the ids each returns.

    The queries take turns (one run of each per round) so drift, garbage
    collection and checkpoints fall on all of them alike; a query stops at
    ``iterations`` runs or after ``max_seconds`` of its own time (at least 10 runs).
    """
    ids: list[list[str]] = []
    for query in queries:
        for _ in range(WARMUPS):
            async with sessionmaker() as session:
                page = [row.id for row in await query(session)]
        ids.append(page)
    latencies: list[list[float]] = [[] for _ in queries]
    spent = [0.0 for _ in queries]

    def wanted(slot: int) -> bool:
        runs = len(latencies[slot])
        return runs < iterations and (runs < 10 or spent[slot] < max_seconds)

    while any(wanted(slot) for slot in range(len(queries))):
        for slot, query in enumerate(queries):
            if not wanted(slot):
                continue
            started = time.perf_counter()
            async with sessionmaker() as session:
                await query(session)
            elapsed = time.perf_counter() - started
            spent[slot] += elapsed
            latencies[slot].append(elapsed * 1000)
    return latencies, ids


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, max(0, -(-99 * len(ordered) // 100) - 1))]


async def measure(
    settings: Settings,
    label: str,
    rows: int,
    page: int,
    iterations: int,
    max_seconds: float,
) -> tuple[list[Timing], float]:
    """Fill the database, then time both methods on page 1 and ``page``."""
    engine = create_engine_from_settings(settings)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        # Last row of the page before ``page``, as an index in insertion order.
        cursor_index = rows - (page - 1) * PAGE_SIZE
        tenant_id, (cursor_at, cursor_id), seconds = await fill(engine, rows, cursor_index)
        print(
            f"{label}: inserted {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)",
            file=sys.stderr,
        )
        if engine.dialect.name == "postgresql":
            # What autovacuum would have done by now on a table this size.
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE aso_content"))
        cursor = encode_cursor(cursor_at, cursor_id)
        filters = ContentFilters()

        def keyset(cursor_text: str | None) -> Query:
            async def run(session: AsyncSession) -> Sequence[ContentPiece]:
                after = decode_cursor(cursor_text) if cursor_text else None
                params = PageParams(limit=PAGE_SIZE, after=after)
                return await ContentRepository(session).page_by_created(
                    tenant_id=tenant_id, filters=filters, params=params
                )

            return run

        def offset(number: int) -> Query:
            # The same extra row as the keyset query, so both read as many rows.
            query = (
                select(ContentPiece)
                .where(ContentPiece.tenant_id == tenant_id)
                .order_by(ContentPiece.created_at.desc(), ContentPiece.id.desc())
                .offset((number - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE + 1)
            )

            async def run(session: AsyncSession) -> Sequence[ContentPiece]:
                return (await session.scalars(query)).all()

            return run

        cases = [
            ("keyset", 1, keyset(None)),
            ("keyset", page, keyset(cursor)),
            ("offset", 1, offset(1)),
            ("offset", page, offset(page)),
        ]
        gc.collect()
        all_latencies, all_ids = await _time(
            sessionmaker, [query for _, _, query in cases], iterations, max_seconds
        )
        timings: list[Timing] = []
        results: dict[tuple[str, int], list[str]] = {}
        for (method, number, _), latencies, ids in zip(cases, all_latencies, all_ids, strict=True):
            results[(method, number)] = ids[:PAGE_SIZE]
            timings.append(
                Timing(
                    database=label,
                    method=method,
                    page=number,
                    runs=len(latencies),
                    p50_ms=round(statistics.median(latencies), 3),
                    p99_ms=round(_p99(latencies), 3),
                )
            )
        for number in (1, page):
            if results[("keyset", number)] != results[("offset", number)]:
                raise SystemExit(f"{label}: keyset and offset disagree on page {number}")
        return timings, seconds
    finally:
        await engine.dispose()


async def _pg_admin(admin_url: str, statement: str) -> None:
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run_sqlite(args: argparse.Namespace) -> tuple[list[Timing], float]:
    with tempfile.TemporaryDirectory(prefix="xyn-bench-pages-") as data_dir:
        settings = Settings(data_dir=Path(data_dir), access_log=False)
        upgrade_to_head(settings)
        return asyncio.run(
            measure(settings, "SQLite", args.rows, args.page, args.iterations, args.max_seconds)
        )


def run_postgres(args: argparse.Namespace) -> tuple[list[Timing], float]:
    admin_url: str = args.postgres
    name = "xyn_bench_" + uuid.uuid4().hex[:12]
    # The name is generated from hex digits; CREATE DATABASE takes no parameters.
    asyncio.run(_pg_admin(admin_url, "CREATE DATABASE " + name))  # guard: allow XG001 generated
    try:
        with tempfile.TemporaryDirectory(prefix="xyn-bench-pages-") as data_dir:
            settings = Settings(
                data_dir=Path(data_dir),
                access_log=False,
                database_url=admin_url.rsplit("/", 1)[0] + "/" + name,
            )
            upgrade_to_head(settings)
            return asyncio.run(
                measure(
                    settings, "PostgreSQL", args.rows, args.page, args.iterations, args.max_seconds
                )
            )
    finally:
        drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
        asyncio.run(_pg_admin(admin_url, drop))  # guard: allow XG001 generated identifier


def _ratio(timings: list[Timing], database: str, method: str, field: str) -> float:
    by_page = {
        t.page: getattr(t, field) for t in timings if (t.database, t.method) == (database, method)
    }
    first, deep = by_page[1], by_page[max(by_page)]
    return round(deep / first, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=10_000, help="the deep page (size 100)")
    parser.add_argument("--iterations", type=int, default=200, help="timed runs per query")
    parser.add_argument(
        "--max-seconds", type=float, default=30.0, help="time budget per query (>= 10 runs)"
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL admin URL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    if args.page < 2 or (args.page - 1) * PAGE_SIZE >= args.rows:
        parser.error("--page must be at least 2 and within --rows")

    runs: list[tuple[str, Callable[[argparse.Namespace], tuple[list[Timing], float]]]] = [
        ("SQLite", run_sqlite)
    ]
    if args.postgres:
        runs.append(("PostgreSQL", run_postgres))
    timings: list[Timing] = []
    summary: list[dict[str, Any]] = []
    for label, run in runs:
        measured, seconds = run(args)
        timings.extend(measured)
        summary.append(
            {
                "database": label,
                "rows": args.rows,
                "insert_seconds": round(seconds, 1),
                "insert_rows_per_second": round(args.rows / seconds),
                "keyset_p99_ratio": _ratio(measured, label, "keyset", "p99_ms"),
                "keyset_p50_ratio": _ratio(measured, label, "keyset", "p50_ms"),
                "offset_p99_ratio": _ratio(measured, label, "offset", "p99_ms"),
                "offset_p50_ratio": _ratio(measured, label, "offset", "p50_ms"),
            }
        )
    if args.json:
        print(json.dumps({"timings": [asdict(t) for t in timings], "summary": summary}, indent=2))
        return
    print(f"{'database':<12}{'method':<8}{'page':>8}{'runs':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for t in timings:
        print(
            f"{t.database:<12}{t.method:<8}{t.page:>8}{t.runs:>6}{t.p50_ms:>10.2f}{t.p99_ms:>10.2f}"
        )
    print()
    for s in summary:
        verdict = "meets" if s["keyset_p99_ratio"] <= GOAL_RATIO else "misses"
        print(
            f"{s['database']}: {s['rows']:,} rows inserted at {s['insert_rows_per_second']:,} rows/s;"
            f" p99 page {args.page}/page 1: keyset {s['keyset_p99_ratio']}x"
            f" ({verdict} <= {GOAL_RATIO}x), offset {s['offset_p99_ratio']}x"
        )


if __name__ == "__main__":
    main()
