"""The platform's cache warmers, run as a DBOS scheduled workflow: once per tick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from dbos import DBOS

from tests.system_runtime.support import harness
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.schedules import firing

pytestmark = pytest.mark.asyncio

_NAMESPACE = "warm-test"


class _Warmer:
    """A warmer like a service's: fills one cache entry, counting its computations."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, cache: PlatformCache) -> None:
        async def compute() -> dict[str, Any]:
            self.runs += 1
            return {"warmed": self.runs}

        # Computed again on every tick, as a warmer refreshing an expiring entry would.
        await cache.invalidate(cache.tag(_NAMESPACE, "-"))
        await cache.get_or_compute(
            _NAMESPACE, "-", ["trending"], compute, tags=[cache.tag(_NAMESPACE, "-")]
        )


async def _schedule() -> dict[str, Any]:
    stored = await DBOS.get_schedule_async(firing.CACHE_WARM_SCHEDULE)
    return dict(stored) if stored is not None else {}


async def test_warming_is_a_dbos_schedule_every_n_hours(
    make_settings: Callable[..., Settings],
) -> None:
    async with harness(make_settings(), runtime=RuntimeSettings(cache_warm_every_hours=4)):
        stored = await _schedule()
        assert stored["schedule"] == "0 0 */4 * * *"
        assert stored["workflow_name"] == firing.WARM_WORKFLOW
        assert stored["status"] == "ACTIVE"


async def test_zero_hours_turns_warming_off(make_settings: Callable[..., Settings]) -> None:
    async with harness(make_settings(), runtime=RuntimeSettings(cache_warm_every_hours=0)):
        assert await _schedule() == {}


async def test_a_tick_warms_and_each_tick_warms_once(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with harness(make_settings(database_url=database_url)) as h:
        warmer = _Warmer()
        h.platform.cache.add_warmer(warmer)
        cache = h.platform.cache
        assert await cache.lookup_json(_NAMESPACE, "-", ["trending"]) is None

        handle = await asyncio.to_thread(DBOS.trigger_schedule, firing.CACHE_WARM_SCHEDULE)
        await asyncio.to_thread(handle.get_result)
        assert warmer.runs == 1
        assert await cache.lookup_json(_NAMESPACE, "-", ["trending"]) == '{"warmed":1}'

        # Two replicas' schedulers seeing the same ticks (here: the same window
        # backfilled twice) enqueue one workflow per tick, so each tick warms once.
        start, end = datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 13, tzinfo=UTC)
        first = await asyncio.to_thread(
            DBOS.backfill_schedule, firing.CACHE_WARM_SCHEDULE, start, end
        )
        second = await asyncio.to_thread(
            DBOS.backfill_schedule, firing.CACHE_WARM_SCHEDULE, start, end
        )
        ticks = [handle.get_workflow_id() for handle in first]
        assert ticks == [handle.get_workflow_id() for handle in second]
        assert len(ticks) == 2  # 06:00 and 12:00
        for tick in first + second:
            await asyncio.to_thread(tick.get_result)
        assert warmer.runs == 1 + 2
        assert await cache.lookup_json(_NAMESPACE, "-", ["trending"]) == '{"warmed":3}'
