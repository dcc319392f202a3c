"""Graceful degradation under memory pressure: shrink the bounded caches, grow them back.

A named task reads the process's resident memory every ``interval`` seconds.
Past ``threshold_bytes`` every registered cache is resized to ``shrink_factor``
of its configured bound (dropping its least recently used entries), once, with
a log line and a metric; when memory falls below ``recovery_ratio`` of the
threshold (a margin, so a process hovering at the line does not flap) each
cache gets its configured bound back. A cache costs recomputation when
smaller, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter, Gauge

from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.resources import resident_memory_bytes

__all__ = ["MemoryPressure", "ResizableCache"]

log = get_logger(__name__)


class ResizableCache(Protocol):
    """A cache whose bound can change while it runs (e.g. ``LocalEntries``)."""

    @property
    def max_entries(self) -> int: ...

    def resize(self, max_entries: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Registered:
    cache: ResizableCache
    configured: int


class MemoryPressure:
    """Shrinks registered caches while resident memory is over a threshold."""

    TASK_NAME = "memory-pressure-monitor"

    def __init__(
        self,
        metrics: PlatformMetrics,
        *,
        threshold_bytes: int,
        interval: float,
        shrink_factor: float,
        recovery_ratio: float,
        read_memory: Callable[[], int | None] = resident_memory_bytes,
    ) -> None:
        self._threshold = threshold_bytes
        self._interval = interval
        self._shrink_factor = shrink_factor
        self._recovery_ratio = recovery_ratio
        self._read_memory = read_memory
        # Names come from code, one per cache the platform has (bounded by it).
        self._caches: dict[str, _Registered] = {}  # guard: allow XG005 one per named cache
        self._under_pressure = False
        self._task: asyncio.Task[None] | None = None
        self._gauge = metrics.service_metric(
            Gauge,
            "xynergy_memory_pressure",
            "1 while resident memory is over the threshold and the caches are shrunk, else 0.",
        )
        self._changes = metrics.service_metric(
            Counter,
            "xynergy_memory_pressure_changes",
            "Times the bounded caches were shrunk (pressure) or restored (relief).",
            ["change"],
        )
        self._gauge.set(0)

    @property
    def under_pressure(self) -> bool:
        """Whether the caches are shrunk now."""
        return self._under_pressure

    @property
    def threshold_bytes(self) -> int:
        """Resident memory above which the caches shrink."""
        return self._threshold

    def register(self, name: str, cache: ResizableCache) -> None:
        """Shrink ``cache`` under pressure; its bound now is the one it returns to."""
        self._caches[name] = _Registered(cache, cache.max_entries)
        if self._under_pressure:
            cache.resize(self._shrunk(cache.max_entries))

    def start(self) -> None:
        """Start checking (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._check_forever(), name=self.TASK_NAME)

    async def stop(self) -> None:
        """Stop checking and give every cache its configured bound back."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._under_pressure:
            self._relieve(None)

    def check(self) -> None:
        """Compare resident memory with the threshold once and act on it."""
        rss = self._read_memory()
        if rss is None:
            return
        if not self._under_pressure and rss > self._threshold:
            self._pressure(rss)
        elif self._under_pressure and rss < self._threshold * self._recovery_ratio:
            self._relieve(rss)

    def _shrunk(self, configured: int) -> int:
        return max(1, int(configured * self._shrink_factor))

    def _pressure(self, rss: int) -> None:
        self._under_pressure = True
        for registered in self._caches.values():
            registered.cache.resize(self._shrunk(registered.configured))
        self._gauge.set(1)
        self._changes.labels("shrink").inc()
        log.warning(
            "memory.pressure_caches_shrunk",
            rss_bytes=rss,
            threshold_bytes=self._threshold,
            caches={name: r.cache.max_entries for name, r in self._caches.items()},
        )

    def _relieve(self, rss: int | None) -> None:
        self._under_pressure = False
        for registered in self._caches.values():
            registered.cache.resize(registered.configured)
        self._gauge.set(0)
        self._changes.labels("restore").inc()
        log.info(
            "memory.pressure_caches_restored",
            rss_bytes=rss,
            threshold_bytes=self._threshold,
            caches={name: r.cache.max_entries for name, r in self._caches.items()},
        )

    async def _check_forever(self) -> None:
        while True:
            try:
                self.check()
            except Exception as exc:
                # A failed read must not end the monitor; the next tick tries again.
                log.warning("memory.pressure_check_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)
