"""Platform Dashboard settings, prefix ``XYNERGY_DASHBOARD_`` (e.g. ``XYNERGY_DASHBOARD_STATUS_WINDOW_SECONDS``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DashboardSettings"]


class DashboardSettings(BaseSettings):
    """Windows, timeouts and thresholds of the Platform Dashboard."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_DASHBOARD_", extra="ignore", frozen=True)

    # --- status ------------------------------------------------------------------------
    status_window_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="GET /api/status answers from a check of every service and backend at most "
        "this old; concurrent callers share one check in flight (0: check on every call).",
    )
    status_check_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest one check of the status (a service, the database, Redis, the queues, "
        "the breakers) may take; past it that check shows as down with a timeout.",
    )
    status_services_max: int = Field(
        default=64,
        ge=1,
        le=1_000,
        description="Most services one status checks (those mounted in process or named in "
        "XYNERGY_SERVICE_URLS, in name order).",
    )
    status_breakers_max: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Most circuit breakers one status lists.",
    )
    status_error_max_chars: int = Field(
        default=300, ge=20, le=10_000, description="Longest error text of one check."
    )
    queues_service: str = Field(
        default="system-runtime",
        min_length=1,
        max_length=100,
        description="Service whose /metrics reports the runtime's queues.",
    )
    breakers_service: str = Field(
        default="ai-routing-engine",
        min_length=1,
        max_length=100,
        description="Service whose /metrics reports the AI providers' circuit breakers.",
    )
