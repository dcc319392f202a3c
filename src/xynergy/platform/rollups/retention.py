"""Deleting rollup rows older than ``rollup_retention_days``, in bounded batches.

:func:`purge_expired` deletes at most one batch per table, oldest first, in a
short transaction per table. :func:`retention_job` is what the platform
registers as a maintenance job (run by the System Runtime's maintenance
schedule, once per tick across replicas): rounds of batches until no table
fills a batch, at most ``rollup_retention_max_batches`` rounds per tick.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.rollups.models import ROLLUP_TABLES

__all__ = ["JOB_NAME", "purge_expired", "retention_cutoff", "retention_job"]

log = get_logger(__name__)

JOB_NAME = "platform.rollups.retention"
_MINUTES_PER_DAY = 1440


def retention_cutoff(settings: Settings, *, now: float | None = None) -> int:
    """The first minute kept: rows of earlier minutes are deleted."""
    current = int((time.time() if now is None else now) // 60)
    return current - settings.rollup_retention_days * _MINUTES_PER_DAY


async def _purge_table(
    sessionmaker: async_sessionmaker[AsyncSession], table: Table, cutoff: int, batch: int
) -> int:
    # Ids first, then DELETE by id: a bounded statement on both databases (neither
    # PostgreSQL nor SQLite's default build has DELETE ... LIMIT).
    oldest = select(table.c.id).where(table.c.minute < cutoff).order_by(table.c.minute).limit(batch)
    async with unit_of_work(sessionmaker) as session:
        ids = list((await session.execute(oldest)).scalars())
        if ids:
            await session.execute(delete(table).where(table.c.id.in_(ids)))
    return len(ids)


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession], *, cutoff: int, batch: int
) -> list[int]:
    """Delete up to ``batch`` rows older than ``cutoff`` from each rollup table.

    Returns the rows deleted per table, in ``ROLLUP_TABLES`` order.
    """
    return [await _purge_table(sessionmaker, table, cutoff, batch) for table in ROLLUP_TABLES]


def retention_job(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> Callable[[], Awaitable[None]]:
    """The maintenance job that applies ``rollup_retention_days``."""

    async def purge_all() -> None:
        # One cutoff for the whole run: rows expiring meanwhile wait for the next tick.
        cutoff, deleted, batch = retention_cutoff(settings), 0, settings.rollup_retention_batch
        for _ in range(settings.rollup_retention_max_batches):
            counts = await purge_expired(sessionmaker, cutoff=cutoff, batch=batch)
            deleted += sum(counts)
            if max(counts) < batch:
                break
        log.info("platform.rollups.retention_purged", rows=deleted)

    return purge_all
