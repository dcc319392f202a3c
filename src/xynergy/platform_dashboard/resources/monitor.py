"""GET /api/resources' figures: this process, measured on request.

The lag sampler, the memory-pressure check and the same figures as gauges on
/metrics belong to the platform (``Platform.process``, started in every app:
``xynergy.platform.process_monitor``); the dashboard only reads them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from xynergy.platform.process_monitor import ProcessMonitor
from xynergy.platform.resources import (
    disk_use,
    file_descriptor_limit,
    open_file_descriptors,
    resident_memory_bytes,
)
from xynergy.platform_dashboard.resources.schemas import (
    CacheSize,
    DiskFigures,
    EventLoopFigures,
    FileDescriptorFigures,
    MemoryFigures,
    ProcessResources,
)

__all__ = ["measure_resources"]


def measure_resources(monitor: ProcessMonitor) -> ProcessResources:
    """Every figure, now."""
    open_fds, limit = open_file_descriptors(), file_descriptor_limit()
    lag = monitor.lag.snapshot()
    pressure = monitor.pressure
    return ProcessResources(
        measured_at=datetime.now(UTC),
        memory=MemoryFigures(
            rss_bytes=resident_memory_bytes(),
            pressure_threshold_bytes=pressure.threshold_bytes if pressure else None,
            under_pressure=pressure.under_pressure if pressure else False,
        ),
        file_descriptors=FileDescriptorFigures(
            open=open_fds,
            soft_limit=limit,
            percent=round(100.0 * open_fds / limit, 2) if open_fds is not None and limit else None,
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
            for name, directory in monitor.directories.items()
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
            for cache in monitor.caches
        ],
    )
