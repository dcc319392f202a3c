"""Under memory pressure the bounded caches shrink, say so, and grow back afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from structlog.testing import capture_logs

from tests.helpers import metric_value, scrape
from tests.platform_dashboard.harness import all_in_one
from xynergy.platform.config import Settings
from xynergy.platform.local_cache import LocalEntries
from xynergy.platform.memory_pressure import MemoryPressure
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.resources import resident_memory_bytes

CHECK_INTERVAL = 0.02
BOUND = 1_000


def local_cache(body: dict[str, object]) -> dict[str, int]:
    caches = {cache["name"]: cache for cache in body["caches"]}  # type: ignore[attr-defined]
    return dict(caches["cache-local"])


class TestDashboard:
    async def test_threshold_below_rss_halves_the_cache_until_shutdown(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        rss = resident_memory_bytes()
        assert rss is not None
        settings = make_settings(
            memory_pressure_rss_bytes=rss // 2, memory_check_interval_seconds=CHECK_INTERVAL
        )
        with capture_logs() as logs:
            async with all_in_one(settings, others={}) as api:
                entries = api.platform.cache.local_entries
                for index in range(entries.max_entries):
                    entries.put(f"k{index}", "v", ttl=60)
                await asyncio.sleep(CHECK_INTERVAL * 5)
                body = await api.resources()
                text = scrape(api.platform)
                held = len(entries)
            restored = entries.max_entries
        configured = settings.cache_memory_max_entries
        assert body["memory"]["under_pressure"] is True
        assert body["memory"]["pressure_threshold_bytes"] == rss // 2
        assert local_cache(body)["max_entries"] == configured // 2
        assert local_cache(body)["configured_max_entries"] == configured
        assert held <= configured // 2
        assert metric_value(text, "xynergy_memory_pressure") == 1
        assert metric_value(text, "xynergy_memory_pressure_changes_total", change="shrink") == 1
        assert (
            metric_value(text, "xynergy_bounded_cache_max_entries", cache="cache-local")
            == configured // 2
        )
        shrunk = [log for log in logs if log["event"] == "memory.pressure_caches_shrunk"]
        assert len(shrunk) == 1
        assert shrunk[0]["caches"] == {"cache-local": configured // 2}
        assert restored == configured


class TestMemoryPressure:
    def pressure(self, reading: list[int]) -> tuple[MemoryPressure, LocalEntries, PlatformMetrics]:
        metrics = PlatformMetrics()
        pressure = MemoryPressure(
            metrics,
            threshold_bytes=1_000,
            interval=CHECK_INTERVAL,
            shrink_factor=0.5,
            recovery_ratio=0.9,
            read_memory=lambda: reading[0],
        )
        cache = LocalEntries(BOUND)
        for index in range(BOUND):
            cache.put(f"k{index}", "v", ttl=60)
        pressure.register("cache-local", cache)
        return pressure, cache, metrics

    def test_shrinks_once_then_grows_back_below_the_margin(self) -> None:
        reading = [1_500]
        pressure, cache, metrics = self.pressure(reading)
        with capture_logs() as logs:
            pressure.check()
            pressure.check()
            assert (cache.max_entries, len(cache)) == (BOUND // 2, BOUND // 2)
            reading[0] = 950  # under the threshold, above the 90 % margin: still shrunk
            pressure.check()
            assert pressure.under_pressure
            reading[0] = 850
            pressure.check()
        assert not pressure.under_pressure
        assert cache.max_entries == BOUND
        text = metrics.render().decode()
        assert metric_value(text, "xynergy_memory_pressure_changes_total", change="shrink") == 1
        assert metric_value(text, "xynergy_memory_pressure_changes_total", change="restore") == 1
        assert metric_value(text, "xynergy_memory_pressure") == 0
        assert [log["event"] for log in logs] == [
            "memory.pressure_caches_shrunk",
            "memory.pressure_caches_restored",
        ]

    async def test_task_checks_until_stopped(self) -> None:
        reading = [1_500]
        pressure, cache, _ = self.pressure(reading)
        pressure.start()
        try:
            await asyncio.sleep(CHECK_INTERVAL * 3)
            assert cache.max_entries == BOUND // 2
            reading[0] = 10
            await asyncio.sleep(CHECK_INTERVAL * 3)
            assert cache.max_entries == BOUND
        finally:
            await pressure.stop()
        assert not [t for t in asyncio.all_tasks() if t.get_name() == MemoryPressure.TASK_NAME]
