"""Alert settings, prefix ``XYNERGY_ALERTS_`` (e.g. ``XYNERGY_ALERTS_RULES_PER_TENANT_MAX``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AlertSettings"]


class AlertSettings(BaseSettings):
    """Bounds and defaults of the dashboard's alerts (defaults mirror the review)."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_ALERTS_", extra="ignore", frozen=True)

    rules_per_tenant_max: int = Field(
        default=100, ge=1, le=10_000, description="Most alert rules one tenant may hold."
    )
    evaluate_rules_max: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most enabled rules one evaluation reads (in pages of evaluate_batch).",
    )
    evaluate_batch: int = Field(
        default=200, ge=1, le=10_000, description="Rules read and evaluated per transaction."
    )
    window_minutes_max: int = Field(
        default=1440, ge=1, le=43_200, description="Longest window of a rate or latency rule."
    )
    webhook_url_max_chars: int = Field(
        default=2048, ge=16, le=8192, description="Longest alert webhook URL, in characters."
    )
    install_defaults: bool = Field(
        default=True,
        description="Give the operator tenant the review's platform-wide rules (spend over "
        "$3,000/month, cache hit rate under 85 %, memory, file descriptors and disk over 85 %) "
        "while it has no platform-wide rule; disable a default rather than delete it.",
    )
    default_monthly_spend_usd: float = Field(
        default=3000.0, gt=0, description="Threshold of the default platform spend rule (USD)."
    )
    default_budget_percent: float = Field(
        default=80.0,
        gt=0,
        le=1000,
        description="Threshold of a budget_percent rule that names none: month-to-date AI "
        "spend over this share of the tenant's month budget (percent).",
    )
    default_cache_hit_percent: float = Field(
        default=85.0, gt=0, le=100, description="Target of the default cache hit rate rule."
    )
    default_resource_percent: float = Field(
        default=85.0,
        gt=0,
        le=100,
        description="Threshold of the default memory, file descriptor and disk rules (percent).",
    )
