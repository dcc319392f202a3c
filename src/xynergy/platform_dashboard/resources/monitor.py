"""The process's resources: measured on request, exported on /metrics on every scrape.

One monitor per dashboard app: it owns the event-loop lag sampler and the
memory-pressure check (two named tasks, stopped with the app) and registers
gauges whose values are read when Prometheus scrapes, so a scrape never shows
a figure older than itself.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import Gauge

from xynergy.platform.memory_pressure import MemoryPressure
from xynergy.platform.resources import (
    LoopLagMonitor,
    disk_use,
    file_descriptor_limit,
    open_file_descriptors,
    resident_memory_bytes,
)
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.platform_dashboard.resources.caches import CacheView, platform_caches
from xynergy.platform_dashboard.resources.schemas import (
    CacheSize,
    DiskFigures,
    EventLoopFigures,
    FileDescriptorFigures,
    MemoryFigures,
    ProcessResources,
)

__all__ = ["ResourceMonitor"]


class ResourceMonitor:
    """Measures this process and keeps its lag and memory-pressure tasks."""

    def __init__(self, platform: Platform, dashboard: DashboardSettings) -> None:
        self._directories: dict[str, Path] = {"data": platform.settings.data_dir}
        if dashboard.log_dir is not None:
            self._directories["logs"] = dashboard.log_dir
        self._caches = platform_caches(platform)
        self.lag = LoopLagMonitor(
            interval=dashboard.loop_lag_interval_seconds, history=dashboard.loop_lag_history
        )
        self.pressure: MemoryPressure | None = None
        if dashboard.memory_pressure_rss_bytes is not None:
            self.pressure = MemoryPressure(
                platform.metrics,
                threshold_bytes=dashboard.memory_pressure_rss_bytes,
                interval=dashboard.memory_check_interval_seconds,
                shrink_factor=dashboard.memory_pressure_shrink_factor,
                recovery_ratio=dashboard.memory_pressure_recovery_ratio,
            )
            self.pressure.register("cache-local", platform.cache.local_entries)
        _export(platform, self)

    def start(self) -> None:
        """Start the lag sampler and the memory check."""
        self.lag.start()
        if self.pressure is not None:
            self.pressure.start()

    async def stop(self) -> None:
        """Stop both tasks (the caches get their bounds back)."""
        await self.lag.stop()
        if self.pressure is not None:
            await self.pressure.stop()

    @property
    def directories(self) -> dict[str, Path]:
        """The directories whose disk use is reported, by name."""
        return dict(self._directories)

    @property
    def caches(self) -> list[CacheView]:
        """The caches whose sizes are reported."""
        return list(self._caches)

    def measure(self) -> ProcessResources:
        """Every figure, now."""
        open_fds, limit = open_file_descriptors(), file_descriptor_limit()
        lag = self.lag.snapshot()
        return ProcessResources(
            measured_at=datetime.now(UTC),
            memory=MemoryFigures(
                rss_bytes=resident_memory_bytes(),
                pressure_threshold_bytes=self.pressure.threshold_bytes if self.pressure else None,
                under_pressure=self.pressure.under_pressure if self.pressure else False,
            ),
            file_descriptors=FileDescriptorFigures(
                open=open_fds,
                soft_limit=limit,
                percent=round(100.0 * open_fds / limit, 2)
                if open_fds is not None and limit
                else None,
            ),
            disks=[
                DiskFigures(
                    name=name,
                    path=use.path,
                    used_bytes=use.used_bytes,
                    total_bytes=use.total_bytes,
                    free_bytes=use.free_bytes,
                    percent=use.percent,
                )
                for name, directory in self._directories.items()
                if (use := disk_use(directory)) is not None
            ],
            event_loop=EventLoopFigures(
                lag_last_ms=round(lag.last * 1000, 3),
                lag_max_ms=round(lag.max * 1000, 3),
                lag_mean_ms=round(lag.mean * 1000, 3),
                samples=lag.samples,
                interval_ms=lag.interval * 1000,
                tasks=len(asyncio.all_tasks()),
            ),
            caches=[
                CacheSize(
                    name=cache.name,
                    entries=cache.entries(),
                    max_entries=cache.max_entries(),
                    configured_max_entries=cache.configured_max_entries,
                )
                for cache in self._caches
            ],
        )


def _or_nan(read: Callable[[], float | int | None]) -> Callable[[], float]:
    """A scrape-time reader that answers NaN (Prometheus' "unknown") instead of failing."""

    def value() -> float:
        try:
            figure = read()
        except Exception:
            return math.nan
        return math.nan if figure is None else float(figure)

    return value


def _task_count() -> int:
    # Scrapes render on the event loop (probes and the metrics port alike).
    return len(asyncio.all_tasks())


def _disk_reader(directory: Path, field: str) -> Callable[[], float | None]:
    def read() -> float | None:
        use = disk_use(directory)
        return None if use is None else float(getattr(use, field))

    return read


def _export(platform: Platform, monitor: ResourceMonitor) -> None:
    """Point the resource gauges at ``monitor`` (the last dashboard app started wins)."""
    metric = platform.metrics.service_metric
    metric(
        Gauge, "xynergy_process_resident_memory_bytes", "Resident set size of this process."
    ).set_function(_or_nan(resident_memory_bytes))
    metric(
        Gauge, "xynergy_process_open_fds", "Open file descriptors of this process."
    ).set_function(_or_nan(open_file_descriptors))
    metric(
        Gauge, "xynergy_process_max_fds", "Soft limit on open file descriptors (NaN: unlimited)."
    ).set_function(_or_nan(file_descriptor_limit))
    lag = monitor.lag
    metric(
        Gauge,
        "xynergy_event_loop_lag_seconds",
        "How late the event loop ran its last lag timer.",
    ).set_function(lambda: lag.snapshot().last)
    metric(
        Gauge,
        "xynergy_event_loop_lag_max_seconds",
        "Most lag over the kept samples.",
    ).set_function(lambda: lag.snapshot().max)
    metric(Gauge, "xynergy_asyncio_tasks", "Tasks on the event loop.").set_function(
        _or_nan(_task_count)
    )
    used = metric(
        Gauge, "xynergy_disk_used_bytes", "Used space of a directory's file system.", ["directory"]
    )
    total = metric(
        Gauge, "xynergy_disk_total_bytes", "Size of a directory's file system.", ["directory"]
    )
    for name, directory in monitor.directories.items():
        used.labels(name).set_function(_or_nan(_disk_reader(directory, "used_bytes")))
        total.labels(name).set_function(_or_nan(_disk_reader(directory, "total_bytes")))
    entries = metric(
        Gauge, "xynergy_bounded_cache_entries", "Entries of a bounded in-process cache.", ["cache"]
    )
    bound = metric(
        Gauge,
        "xynergy_bounded_cache_max_entries",
        "Bound of a bounded in-process cache now (lower under memory pressure).",
        ["cache"],
    )
    for cache in monitor.caches:
        entries.labels(cache.name).set_function(_or_nan(cache.entries))
        bound.labels(cache.name).set_function(_or_nan(cache.max_entries))
