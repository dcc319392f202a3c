"""unit_of_work under cancellation: a second cancel during the rollback does not cut it.

A run stopped at shutdown is cancelled once (its query interrupted), rolls back, and
may be cancelled again while that rollback returns the connection to the pool (the
drain and the run's own scheduler both cancel). Cut there, the pool's reset fails
("Exception during reset or similar", logged at error) and the connection is thrown
away. The rollback must finish, and the cancellation still reach the caller.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import PoolResetState

from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import unit_of_work


class _SecondCancel:
    """Cancels ``victim`` again as the pool resets its connection (armed once)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.victim: asyncio.Task[Any] | None = None
        self.fired = 0
        # PoolEvents.reset: just before the pool's ROLLBACK of a connection coming
        # back, which the session's rollback in unit_of_work performs after the first
        # cancellation. The second cancel lands on that ROLLBACK's await.
        event.listen(engine.sync_engine.pool, "reset", self._on_reset)

    def _on_reset(self, _dbapi: Any, _record: Any, state: PoolResetState) -> None:
        if self.victim is not None and not self.fired and not state.transaction_was_reset:
            self.fired += 1
            self.victim.cancel()


async def _interrupted_unit_of_work(engine: AsyncEngine, inside: asyncio.Event) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with unit_of_work(sessions) as session:
        await session.execute(text("SELECT 1"))  # a connection, in a transaction
        inside.set()
        await asyncio.sleep(60)  # the first cancellation lands here


class TestSecondCancellationDuringRollback:
    async def test_the_rollback_finishes_and_the_connection_returns_to_the_pool(
        self,
        make_settings: Any,
        database_url: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        settings: Settings = make_settings(database_url=database_url)
        engine = create_engine_from_settings(settings)
        try:
            second = _SecondCancel(engine)
            inside = asyncio.Event()
            with caplog.at_level(logging.ERROR, logger="sqlalchemy"):
                task = asyncio.create_task(_interrupted_unit_of_work(engine, inside))
                second.victim = task
                await asyncio.wait_for(inside.wait(), 10)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert second.fired == 1  # the reset was reached and cancelled again
            problems = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy")]
            assert problems == []
            pool: Any = engine.sync_engine.pool
            # Returned, not thrown away: nothing checked out, the connection reusable.
            assert pool.checkedout() == 0
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        finally:
            await engine.dispose()
