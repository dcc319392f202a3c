"""What this process uses: memory, file descriptors, disk, event-loop lag.

Read from the standard library and ``/proc`` (no psutil: it is not a
dependency, and Linux's ``/proc/self`` answers each figure in microseconds).
Where a figure cannot be read on this system it is None, never a guess.

Event-loop lag is how late a timer fires: a named task sleeps ``interval``
seconds again and again and records how much later than that it woke. A block
of the loop of ``b`` seconds shows as a lag of at least ``b - interval``. The
history is a bounded deque; the task is cancelled by :meth:`LoopLagMonitor.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DiskUse",
    "LagSnapshot",
    "LoopLagMonitor",
    "disk_use",
    "open_file_descriptors",
    "file_descriptor_limit",
    "memory_limit_bytes",
    "resident_memory_bytes",
]

_PROC_SELF = Path("/proc/self")
# A container's memory limit: cgroup v2, then v1 (whose "unlimited" is a huge number).
_CGROUP_MEMORY_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def resident_memory_bytes() -> int | None:
    """The process's resident set size now (Linux), else its peak, else None."""
    try:
        fields = (_PROC_SELF / "statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        # Peak, not current; in KiB on Linux and BSD (bytes on macOS, which has no /proc).
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (OSError, ValueError):
        return None


def memory_limit_bytes() -> int | None:
    """Memory this process may use: its cgroup's limit when one is set and below the
    machine's physical memory (a container), else the physical memory; None if unknown."""
    try:
        physical: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        physical = None
    for path in _CGROUP_MEMORY_LIMITS:
        try:
            limit = int(path.read_text().strip())
        except (OSError, ValueError):  # absent, or "max": no limit at this level
            continue
        if physical is None or 0 < limit < physical:
            return limit
    return physical


def open_file_descriptors() -> int | None:
    """How many file descriptors the process holds open, or None if unknown."""
    for directory in (_PROC_SELF / "fd", Path("/dev/fd")):
        try:
            # The listing opens one descriptor of its own; it is closed again by then.
            return len(os.listdir(directory))
        except OSError:
            continue
    return None


def file_descriptor_limit() -> int | None:
    """The soft limit on open file descriptors (None: unlimited or unknown)."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


@dataclass(frozen=True, slots=True)
class DiskUse:
    """Space on the file system holding a directory, in bytes."""

    path: str
    used_bytes: int
    total_bytes: int
    free_bytes: int

    @property
    def percent(self) -> float:
        """Used share of the total, 0-100."""
        return round(100.0 * self.used_bytes / self.total_bytes, 2) if self.total_bytes else 0.0


def disk_use(path: Path) -> DiskUse | None:
    """Disk use of the file system holding ``path`` (its nearest existing parent), or None."""
    candidate = path
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    try:
        usage = shutil.disk_usage(candidate)
    except OSError:
        return None
    return DiskUse(str(path), usage.used, usage.total, usage.free)


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    """Event-loop lag over the kept samples, in seconds (zeros before the first one)."""

    last: float
    max: float
    mean: float
    samples: int
    interval: float


class LoopLagMonitor:
    """Samples event-loop lag in a named background task, keeping ``history`` samples."""

    TASK_NAME = "loop-lag-monitor"

    def __init__(self, *, interval: float, history: int) -> None:
        self._interval = interval
        self._samples: deque[float] = deque(maxlen=history)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._sample_forever(), name=self.TASK_NAME)

    async def stop(self) -> None:
        """Cancel the sampling task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        """Whether the sampling task is alive."""
        return self._task is not None and not self._task.done()

    def snapshot(self) -> LagSnapshot:
        """The lag figures now."""
        samples = list(self._samples)
        if not samples:
            return LagSnapshot(0.0, 0.0, 0.0, 0, self._interval)
        return LagSnapshot(
            last=samples[-1],
            max=max(samples),
            mean=sum(samples) / len(samples),
            samples=len(samples),
            interval=self._interval,
        )

    async def _sample_forever(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(self._interval)
            self._samples.append(max(0.0, time.monotonic() - started - self._interval))
