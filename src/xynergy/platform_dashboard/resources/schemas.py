"""What GET /api/resources answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = [
    "CacheSize",
    "DiskFigures",
    "EventLoopFigures",
    "FileDescriptorFigures",
    "MemoryFigures",
    "ProcessResources",
]


class MemoryFigures(BaseModel):
    """Resident memory and the pressure threshold."""

    rss_bytes: int | None = Field(description="Resident set size now; null if unreadable.")
    pressure_threshold_bytes: int | None = Field(
        description="Above it the bounded caches shrink; null: never."
    )
    under_pressure: bool = Field(description="Whether the caches are shrunk now.")


class FileDescriptorFigures(BaseModel):
    """Open file descriptors against the soft limit."""

    open: int | None
    soft_limit: int | None = Field(description="Null: unlimited or unknown.")
    percent: float | None = Field(description="open / soft_limit x 100.")


class DiskFigures(BaseModel):
    """Space on the file system of one directory."""

    name: str = Field(description="`data` or `logs`.")
    path: str
    used_bytes: int
    total_bytes: int
    free_bytes: int
    percent: float


class EventLoopFigures(BaseModel):
    """How late the event loop runs timers, and how many tasks it holds."""

    lag_last_ms: float
    lag_max_ms: float = Field(description="Over the kept samples.")
    lag_mean_ms: float
    samples: int
    interval_ms: float = Field(description="A block shows as at least its length minus this.")
    tasks: int


class CacheSize(BaseModel):
    """One bounded in-process cache or map."""

    name: str
    entries: int
    max_entries: int = Field(description="The bound now (lower under memory pressure).")
    configured_max_entries: int


class ProcessResources(BaseModel):
    """What this process uses (the one serving the dashboard)."""

    measured_at: datetime
    memory: MemoryFigures
    file_descriptors: FileDescriptorFigures
    disks: list[DiskFigures]
    event_loop: EventLoopFigures
    caches: list[CacheSize]
