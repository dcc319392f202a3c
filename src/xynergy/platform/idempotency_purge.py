"""Deleting expired Idempotency-Key records, in bounded batches, in the background."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.idempotency_repository import IdempotencyRepository
from xynergy.platform.logging import get_logger

__all__ = ["IdempotencyPurger"]

TASK_NAME = "idempotency-purge"

log = get_logger(__name__)


class IdempotencyPurger:
    """Every ``idempotency_purge_interval_seconds``, delete the expired records.

    Expired records are already ignored when met (``idempotency.run_idempotently``):
    purging only keeps the table small. Each statement touches at most
    ``idempotency_purge_batch_size`` rows, so no purge holds locks for long.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessionmaker = sessionmaker
        self._interval = settings.idempotency_purge_interval_seconds
        self._batch = settings.idempotency_purge_batch_size
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the named background task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._purge_forever(), name=TASK_NAME)

    async def stop(self) -> None:
        """Cancel the background task and wait for it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def purge_once(self) -> int:
        """Delete every record expired now, one bounded batch per transaction."""
        now = utcnow()
        total = 0
        while True:
            async with unit_of_work(self._sessionmaker) as session:
                deleted = await IdempotencyRepository(session).purge_expired(
                    now=now, limit=self._batch
                )
            total += deleted
            if deleted < self._batch:
                return total
            # Let requests in between batches.
            await asyncio.sleep(0)

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                purged = await self.purge_once()
            except Exception as exc:
                # A database outage is answered elsewhere; the next round catches up.
                log.warning("idempotency.purge_failed", error=type(exc).__name__)
            else:
                if purged:
                    log.info("idempotency.purged", records=purged)
