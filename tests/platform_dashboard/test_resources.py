"""GET /api/resources and the same figures on /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import metric_value, scrape
from tests.platform_dashboard.harness import RESOURCES, all_in_one, standalone
from xynergy.platform.config import Settings
from xynergy.platform.resources import LoopLagMonitor

EXTRA_FDS = 64
BLOCK_SECONDS = 0.2
LAG_INTERVAL = 0.02


@contextlib.contextmanager
def open_descriptors(count: int) -> Iterator[None]:
    """Hold ``count`` more file descriptors open (pipes: two each)."""
    held: list[int] = []
    try:
        for _ in range(count // 2):
            held.extend(os.pipe())
        yield
    finally:
        for fd in held:
            os.close(fd)


def lag_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == LoopLagMonitor.TASK_NAME]


class TestFigures:
    async def test_reports_memory_descriptors_disks_loop_and_caches(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        logs = tmp_path / "logs"
        logs.mkdir()
        async with standalone(make_settings(log_dir=logs)) as api:
            body = await api.resources()
        assert body["memory"]["rss_bytes"] > 10 * 1024 * 1024
        assert body["memory"]["under_pressure"] is False
        fds = body["file_descriptors"]
        assert 0 < fds["open"] < fds["soft_limit"]
        assert fds["percent"] == pytest.approx(100 * fds["open"] / fds["soft_limit"], abs=0.01)
        disks = {disk["name"]: disk for disk in body["disks"]}
        assert set(disks) == {"data", "logs"}
        assert disks["logs"]["path"] == str(logs)
        for disk in disks.values():
            assert 0 < disk["used_bytes"] <= disk["total_bytes"]
            assert disk["used_bytes"] + disk["free_bytes"] <= disk["total_bytes"]
        assert body["event_loop"]["tasks"] >= 1
        caches = {cache["name"]: cache for cache in body["caches"]}
        assert set(caches) == {"cache-local", "cache-inflight", "breaker-destinations"}
        local = caches["cache-local"]
        assert local["max_entries"] == local["configured_max_entries"] == 10_000

    async def test_opened_descriptors_raise_the_count(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            before = (await api.resources())["file_descriptors"]["open"]
            scraped_before = metric_value(scrape(api.platform), "xynergy_process_open_fds")
            with open_descriptors(EXTRA_FDS):
                during = (await api.resources())["file_descriptors"]["open"]
                scraped = metric_value(scrape(api.platform), "xynergy_process_open_fds")
            after = (await api.resources())["file_descriptors"]["open"]
        assert during - before >= EXTRA_FDS
        assert scraped - scraped_before >= EXTRA_FDS
        assert after < during

    async def test_a_blocked_loop_shows_as_lag(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(loop_lag_interval_seconds=LAG_INTERVAL)
        async with all_in_one(settings, others={}) as api:
            await asyncio.sleep(LAG_INTERVAL * 3)
            quiet = (await api.resources())["event_loop"]
            time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 - blocks the loop on purpose: the lag to measure
            await asyncio.sleep(LAG_INTERVAL * 3)
            loop = (await api.resources())["event_loop"]
            scraped = metric_value(scrape(api.platform), "xynergy_event_loop_lag_max_seconds")
        assert quiet["lag_max_ms"] < 100
        assert loop["lag_max_ms"] >= 150
        assert loop["samples"] > quiet["samples"]
        assert scraped >= 0.15

    async def test_figures_are_on_metrics(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            text = scrape(api.platform)
        assert metric_value(text, "xynergy_process_resident_memory_bytes") > 10 * 1024 * 1024
        assert metric_value(text, "xynergy_process_max_fds") > 0
        assert metric_value(text, "xynergy_disk_total_bytes", directory="data") > 0
        assert metric_value(text, "xynergy_asyncio_tasks") >= 1
        assert (
            metric_value(text, "xynergy_bounded_cache_max_entries", cache="cache-local") == 10_000
        )
        assert "xynergy_event_loop_lag_seconds " in text
        assert 'xynergy_bounded_cache_entries{cache="breaker-destinations"}' in text


class TestLagTask:
    async def test_named_task_runs_until_shutdown(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}):
            assert len(lag_tasks()) == 1
        assert lag_tasks() == []

    async def test_history_is_bounded(self) -> None:
        monitor = LoopLagMonitor(interval=0.001, history=5)
        monitor.start()
        try:
            await asyncio.sleep(0.05)
            assert monitor.snapshot().samples == 5
        finally:
            await monitor.stop()
        assert not monitor.running


class TestPermissions:
    async def test_without_a_key_401(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            response = await api.get(RESOURCES, headers={})
        assert response.status_code == 401

    async def test_key_without_metrics_read_403(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            response = await api.get(RESOURCES, headers=api.no_metrics)
            operator = await api.get(RESOURCES, headers=api.operator)
        assert response.status_code == 403
        assert operator.status_code == 200
