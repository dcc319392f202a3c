"""Every app, not only the dashboard, watches its process: resource gauges on /metrics,
the lag sampler and the memory-pressure check (platform/process_monitor.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import auth, issue_key, metric_value, running
from xynergy.platform.config import Settings
from xynergy.platform.memory_pressure import MemoryPressure
from xynergy.platform.resource_gauges import RESOURCE_GAUGES
from xynergy.platform.resources import LoopLagMonitor, resident_memory_bytes
from xynergy.server import build_all_in_one, build_standalone

CHECK_INTERVAL = 0.02
MONITOR_TASKS = (LoopLagMonitor.TASK_NAME, MemoryPressure.TASK_NAME)


def monitor_tasks() -> list[str]:
    return sorted(
        name for task in asyncio.all_tasks() if (name := task.get_name()) in MONITOR_TASKS
    )


def family_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def under_pressure(make_settings: Callable[..., Settings]) -> Settings:
    rss = resident_memory_bytes()
    assert rss is not None
    return make_settings(
        memory_pressure_rss_bytes=rss // 2, memory_check_interval_seconds=CHECK_INTERVAL
    )


class TestStandaloneService:
    async def test_metrics_carry_the_resource_gauges(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = build_standalone(make_settings(), "ai-routing-engine")
        async with running(app) as client:
            _, key = await issue_key(app.state.platform, scopes=("metrics:read",))
            response = await client.get("/metrics", headers=auth(key.secret))
        assert response.status_code == 200
        text = response.text
        assert set(RESOURCE_GAUGES) <= family_names(text)
        assert metric_value(text, "xynergy_process_resident_memory_bytes") > 10 * 1024 * 1024
        assert metric_value(text, "xynergy_disk_total_bytes", directory="data") > 0
        assert metric_value(text, "xynergy_bounded_cache_max_entries", cache="cache-local") > 0

    async def test_memory_pressure_shrinks_its_caches(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = under_pressure(make_settings)
        app = build_standalone(settings, "ai-routing-engine")
        async with running(app) as client:
            entries = app.state.platform.cache.local_entries
            await asyncio.sleep(CHECK_INTERVAL * 5)
            shrunk = entries.max_entries
            _, key = await issue_key(app.state.platform, scopes=("metrics:read",))
            text = (await client.get("/metrics", headers=auth(key.secret))).text
        assert shrunk == settings.cache_memory_max_entries // 2
        assert metric_value(text, "xynergy_memory_pressure") == 1
        assert entries.max_entries == settings.cache_memory_max_entries

    async def test_tasks_are_named_and_end_at_shutdown(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = build_standalone(under_pressure(make_settings), "ai-routing-engine")
        async with running(app):
            during = monitor_tasks()
        assert during == sorted(MONITOR_TASKS)
        assert monitor_tasks() == []


class TestAllInOne:
    async def test_one_of_each_task_for_every_service(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # Every service and the dashboard share one Platform: one sampler, one check.
        async with running(build_all_in_one(under_pressure(make_settings))):
            during = monitor_tasks()
        assert during == sorted(MONITOR_TASKS)
        assert monitor_tasks() == []
