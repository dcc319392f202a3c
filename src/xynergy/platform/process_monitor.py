"""This process's resources, watched by every app: one monitor per Platform.

``Platform.open()`` starts it and ``close()`` stops it, so a service started on
its own (say, only the AI Routing Engine) exports the same resource gauges on
its ``/metrics`` as the all-in-one process, and sheds cache under memory
pressure the same way. It owns two named background tasks, the event-loop lag
sampler and (when a threshold is set) the memory-pressure check; the gauges are
read when Prometheus scrapes (``platform/resource_gauges.py``).
"""

from __future__ import annotations

from pathlib import Path

from xynergy.platform.breaker import Breakers
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.memory_pressure import MemoryPressure
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.resource_gauges import BoundedCacheView, export_resource_gauges
from xynergy.platform.resources import LoopLagMonitor

__all__ = ["BoundedCacheView", "ProcessMonitor"]


def _bounded_caches(
    settings: Settings, cache: PlatformCache, breakers: Breakers
) -> list[BoundedCacheView]:
    local = cache.local_entries
    return [
        BoundedCacheView(
            "cache-local",
            lambda: len(local),
            lambda: local.max_entries,
            settings.cache_memory_max_entries,
        ),
        BoundedCacheView(
            "cache-inflight",
            lambda: cache.inflight,
            lambda: settings.cache_max_inflight,
            settings.cache_max_inflight,
        ),
        BoundedCacheView(
            "breaker-destinations",
            lambda: breakers.destinations_held,
            lambda: settings.breaker_max_destinations,
            settings.breaker_max_destinations,
        ),
    ]


class ProcessMonitor:
    """The lag sampler, the memory-pressure check and the resource gauges of one Platform."""

    def __init__(
        self,
        settings: Settings,
        metrics: PlatformMetrics,
        *,
        cache: PlatformCache,
        breakers: Breakers,
    ) -> None:
        self._directories: dict[str, Path] = {"data": settings.data_dir}
        if settings.log_dir is not None:
            self._directories["logs"] = settings.log_dir
        self._caches = _bounded_caches(settings, cache, breakers)
        self.lag = LoopLagMonitor(
            interval=settings.loop_lag_interval_seconds, history=settings.loop_lag_history
        )
        self.pressure: MemoryPressure | None = None
        if settings.memory_pressure_rss_bytes is not None:
            self.pressure = MemoryPressure(
                metrics,
                threshold_bytes=settings.memory_pressure_rss_bytes,
                interval=settings.memory_check_interval_seconds,
                shrink_factor=settings.memory_pressure_shrink_factor,
                recovery_ratio=settings.memory_pressure_recovery_ratio,
            )
            self.pressure.register("cache-local", cache.local_entries)
        # One registry per Platform and one monitor per Platform: registered once.
        export_resource_gauges(
            metrics, lag=self.lag, directories=self._directories, caches=self._caches
        )

    def start(self) -> None:
        """Start the lag sampler and the memory check (each once)."""
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
    def caches(self) -> list[BoundedCacheView]:
        """The caches whose sizes are reported."""
        return list(self._caches)
