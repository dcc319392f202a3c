"""The resource gauges on ``/metrics``, read when Prometheus scrapes.

Each gauge calls its reader at scrape time, so a scrape never shows a figure
older than itself; a reader that fails or has no answer on this system gives
NaN (Prometheus' "unknown") rather than failing the whole scrape.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Gauge

from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.resources import (
    LoopLagMonitor,
    disk_use,
    file_descriptor_limit,
    memory_limit_bytes,
    open_file_descriptors,
    resident_memory_bytes,
)

__all__ = ["RESOURCE_GAUGES", "BoundedCacheView", "export_resource_gauges"]

# Every gauge this module exports (tests check a standalone app shows each one).
RESOURCE_GAUGES = (
    "xynergy_process_resident_memory_bytes",
    "xynergy_memory_limit_bytes",
    "xynergy_process_open_fds",
    "xynergy_process_max_fds",
    "xynergy_event_loop_lag_seconds",
    "xynergy_event_loop_lag_max_seconds",
    "xynergy_asyncio_tasks",
    "xynergy_disk_used_bytes",
    "xynergy_disk_total_bytes",
    "xynergy_bounded_cache_entries",
    "xynergy_bounded_cache_max_entries",
)


@dataclass(frozen=True, slots=True)
class BoundedCacheView:
    """How to read one bounded in-process cache's size and bound (name: a metric label)."""

    name: str
    entries: Callable[[], int]
    max_entries: Callable[[], int]
    configured_max_entries: int


def _or_nan(read: Callable[[], float | int | None]) -> Callable[[], float]:
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


def export_resource_gauges(
    metrics: PlatformMetrics,
    *,
    lag: LoopLagMonitor,
    directories: Mapping[str, Path],
    caches: Sequence[BoundedCacheView],
) -> None:
    """Register the resource gauges on ``metrics`` and point them at these readers."""
    metric = metrics.service_metric
    metric(
        Gauge, "xynergy_process_resident_memory_bytes", "Resident set size of this process."
    ).set_function(_or_nan(resident_memory_bytes))
    metric(
        Gauge,
        "xynergy_memory_limit_bytes",
        "Memory this process may use: its container's (cgroup) limit, else physical memory.",
    ).set_function(_or_nan(memory_limit_bytes))
    metric(
        Gauge, "xynergy_process_open_fds", "Open file descriptors of this process."
    ).set_function(_or_nan(open_file_descriptors))
    metric(
        Gauge, "xynergy_process_max_fds", "Soft limit on open file descriptors (NaN: unlimited)."
    ).set_function(_or_nan(file_descriptor_limit))
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
    for name, directory in directories.items():
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
    for cache in caches:
        entries.labels(cache.name).set_function(_or_nan(cache.entries))
        bound.labels(cache.name).set_function(_or_nan(cache.max_entries))
