"""What GET /api/status answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "BackendStatus",
    "BreakerState",
    "BreakersStatus",
    "PlatformStatus",
    "QueueDepth",
    "QueuesStatus",
    "ServiceStatus",
]

CheckState = Literal["up", "down"]


class ServiceStatus(BaseModel):
    """One service's health and readiness, from its ``/readyz``."""

    name: str = Field(description="The service's slug.")
    status: CheckState = Field(description="`up`: it answered ready; `down`: anything else.")
    transport: Literal["in-process", "network"]
    http_status: int | None = Field(description="Status of its /readyz; null if none came.")
    checks: dict[str, str] = Field(
        default_factory=dict, description="Its backends as its /readyz reported them."
    )
    latency_ms: float | None = Field(description="Time to its answer (or to the failure).")
    error: str | None = Field(description="Why it is down; null when up.")


class BackendStatus(BaseModel):
    """The database or Redis, checked with one round trip."""

    status: CheckState | Literal["not_configured"]
    backend: str | None = Field(default=None, description="`sqlite`, `postgresql`, `redis`.")
    latency_ms: float | None = None
    pool: dict[str, int] | None = Field(
        default=None, description="Connection pool figures where the pool reports them."
    )
    error: str | None = None


class QueueDepth(BaseModel):
    """One queue's runs by state (every replica's, as the runtime last counted them)."""

    name: str
    queued: int
    running: int
    waiting: int
    oldest_queued_age_seconds: float


class QueuesStatus(BaseModel):
    """The runtime's queues, from its /metrics (counted from its runs table)."""

    status: CheckState | Literal["not_deployed"]
    source: str = Field(description="The service they were read from.")
    queues: list[QueueDepth] = Field(default_factory=list)
    error: str | None = None


class BreakerState(BaseModel):
    """One circuit breaker."""

    circuit: str = Field(description="`ai:<provider>:<model>` for a provider's model.")
    state: Literal["closed", "opened", "half-opened", "unknown"]


class BreakersStatus(BaseModel):
    """Circuit breakers the AI Routing Engine's process has used, from its /metrics."""

    status: CheckState | Literal["not_deployed"]
    source: str
    open: int = Field(description="Breakers open or half-open.")
    circuits: list[BreakerState] = Field(default_factory=list)
    truncated: bool = Field(default=False, description="More breakers exist than are listed.")
    error: str | None = None


class PlatformStatus(BaseModel):
    """Every service and backend, checked at most once per window."""

    status: Literal["ok", "degraded"] = Field(description="`degraded` when any check is down.")
    computed_at: datetime = Field(description="When the checks finished (UTC).")
    age_seconds: float = Field(ge=0, description="Seconds since then.")
    window_seconds: float = Field(description="How old an answer may be before a new check.")
    services: list[ServiceStatus]
    database: BackendStatus
    redis: BackendStatus
    queues: QueuesStatus
    breakers: BreakersStatus
