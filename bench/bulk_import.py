"""Bulk keyword import throughput: rows/s of the service import on SQLite and PostgreSQL.

Generates N CSV rows to a temp file, then streams that file through
``xynergy.aso_engine.keywords.service.import_keywords`` (the function behind
``POST /api/keywords/bulk-import`` and ``xynergy aso import-keywords``) into a
fresh, migrated database, and prints rows/s beside the 10,000 rows/s goal.

    .venv/bin/python bench/bulk_import.py [--rows 100000] [--postgres URL] [--json]

``--postgres`` takes an admin URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a throwaway database is created next to it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import async_sessionmaker

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords import service
from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy import service as tenancy

GOAL_ROWS_PER_SECOND = 10_000
CHUNK_BYTES = 65_536


def write_rows(path: Path, rows: int) -> int:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("phrase,locale,tags,target_url,intent\n")
        for index in range(rows):
            handle.write(
                f"keyword number {index} for bulk import,en-US,seo|bulk|batch {index % 7},"
                f"https://example.com/landing/pages/keyword-{index}?campaign=spring,commercial\n"
            )
    return path.stat().st_size


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


async def measure(settings: Settings, path: Path) -> tuple[int, float]:
    """(rows inserted, seconds) for one import of ``path`` into a new tenant."""
    engine = create_engine_from_settings(settings)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with unit_of_work(sessionmaker) as session:
            tenant = await tenancy.create_tenant(session, name="bench-" + uuid.uuid4().hex[:8])
        started = time.perf_counter()
        async with unit_of_work(sessionmaker) as session:
            outcome = await service.import_keywords(
                session,
                sessions=sessionmaker,
                tenant_id=tenant.id,
                chunks=_chunks(path),
                file_format="csv",
                mode="all_or_nothing",
                default_locale=None,
                bounds=AsoSettings(),
            )
        return outcome.report.inserted, time.perf_counter() - started
    finally:
        await engine.dispose()


async def _pg_admin(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def run_sqlite(path: Path) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="xyn-bench-import-") as data_dir:
        settings = Settings(data_dir=Path(data_dir))
        upgrade_to_head(settings)
        return asyncio.run(measure(settings, path))


def run_postgres(admin_url: str, path: Path) -> tuple[int, float]:
    name = "xyn_bench_" + uuid.uuid4().hex[:12]
    # The name is generated from hex digits; CREATE DATABASE takes no parameters.
    asyncio.run(_pg_admin(admin_url, "CREATE DATABASE " + name))  # guard: allow XG001 generated
    try:
        settings = Settings(database_url=admin_url.rsplit("/", 1)[0] + "/" + name)
        upgrade_to_head(settings)
        return asyncio.run(measure(settings, path))
    finally:
        drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
        asyncio.run(_pg_admin(admin_url, drop))  # guard: allow XG001 generated identifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL admin URL")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()

    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="xyn-bench-file-") as file_dir:
        path = Path(file_dir) / "keywords.csv"
        size = write_rows(path, args.rows)
        print(f"file: {args.rows} rows, {size / 1_048_576:.1f} MiB", file=sys.stderr)
        runs = [("SQLite", lambda: run_sqlite(path))]
        if args.postgres:
            runs.append(("PostgreSQL", lambda: run_postgres(args.postgres, path)))
        for label, run in runs:
            inserted, seconds = run()
            rate = inserted / seconds
            results.append(
                {
                    "database": label,
                    "rows": inserted,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(rate),
                    "ratio_to_goal": round(rate / GOAL_ROWS_PER_SECOND, 2),
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'database':<12}{'rows':>10}{'seconds':>10}{'rows/s':>10}{'vs 10k goal':>13}")
    for row in results:
        print(
            f"{row['database']:<12}{row['rows']:>10}{row['seconds']:>10}"
            f"{row['rows_per_second']:>10}{row['ratio_to_goal']:>12}x"
        )


if __name__ == "__main__":
    main()
