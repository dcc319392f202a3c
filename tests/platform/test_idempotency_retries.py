"""Background retries of idempotency outcomes are owned, bounded and stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from xynergy.platform.config import Settings
from xynergy.platform.idempotency_store import OutcomeRetries
from xynergy.platform.runtime import Platform


async def _forever(started: asyncio.Event) -> None:
    started.set()
    await asyncio.Event().wait()


class TestOutcomeRetries:
    async def test_named_bounded_and_cancelled_at_stop(self) -> None:
        retries = OutcomeRetries(max_tasks=2)
        started = [asyncio.Event() for _ in range(3)]
        assert retries.start(_forever(started[0]))
        assert retries.start(_forever(started[1]))
        assert not retries.start(_forever(started[2]))  # full: left to its timeout
        await asyncio.wait_for(asyncio.gather(started[0].wait(), started[1].wait()), 5)
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert "idempotency-outcome-retry" in names
        await retries.stop()
        assert len(retries) == 0
        assert "idempotency-outcome-retry" not in {t.get_name() for t in asyncio.all_tasks()}
        assert not retries.start(_forever(asyncio.Event()))  # stopped: nothing new runs

    async def test_the_platform_stops_them_when_it_closes(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        platform = await Platform.open(make_settings())
        started = asyncio.Event()
        assert platform.idempotency_retries.start(_forever(started))
        await asyncio.wait_for(started.wait(), 5)
        await platform.close()
        assert len(platform.idempotency_retries) == 0
