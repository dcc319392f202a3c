"""Alert rules and events as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.text import PlainText, RawText

__all__ = [
    "AlertEvent",
    "AlertKind",
    "AlertRule",
    "AlertRuleCreate",
    "AlertRuleUpdate",
    "AlertRuleWithSecret",
    "PLATFORM_KINDS",
]

AlertKind = Literal[
    "spend",
    "budget_percent",
    "error_rate",
    "latency_p99",
    "cache_hit_rate",
    "breaker_open",
    "memory",
    "file_descriptors",
    "disk",
]
# Kinds that watch the platform rather than one tenant's data: operators only.
PLATFORM_KINDS: frozenset[str] = frozenset(
    {
        "error_rate",
        "latency_p99",
        "cache_hit_rate",
        "breaker_open",
        "memory",
        "file_descriptors",
        "disk",
    }
)
Period = Literal["day", "month"]
# Shown in pages: display text, no markup survives. URLs and targets are data.
Name = Annotated[str, PlainText(max_length=200, min_length=1)]
Target = Annotated[str, RawText(max_length=255, min_length=1)]
WebhookUrl = Annotated[str, RawText(max_length=8192)]


class AlertRuleCreate(BaseModel):
    """A new rule. ``threshold``: USD (spend), percent (budget use, rates, resources), ms (p99)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: AlertKind
    threshold: float | None = Field(
        default=None, ge=0, le=1e12, description="Omitted: the kind's default (the review's)."
    )
    period: Period | None = Field(default=None, description="spend: per day or per month.")
    window_minutes: int = Field(default=5, ge=1, le=43_200)
    target: Target | None = Field(
        default=None,
        description="A service (error_rate, latency_p99), cache namespace, breaker upstream "
        "(breaker_open, required) or directory name (disk).",
    )
    platform_wide: bool = Field(default=False, description="Operators: watch the whole platform.")
    webhook_url: WebhookUrl | None = None
    enabled: bool = True


class AlertRuleUpdate(BaseModel):
    """Changes to a rule; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    threshold: float | None = Field(default=None, ge=0, le=1e12)
    period: Period | None = Field(default=None, description="spend: per day or per month.")
    window_minutes: int | None = Field(default=None, ge=1, le=43_200)
    target: Target | None = Field(default=None, description="null clears it (where optional).")
    webhook_url: WebhookUrl | None = None
    rotate_webhook_secret: bool = Field(
        default=False,
        description="A new webhook secret, answered this once; the old one signs no more.",
    )
    enabled: bool | None = None


class AlertRule(BaseModel):
    """A rule and its current state (never its webhook secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    threshold: float
    period: str | None
    window_minutes: int
    target: str | None
    platform_wide: bool
    webhook_url: str | None
    enabled: bool
    state: str
    state_since: datetime
    last_value: float | None
    evaluated_at: datetime | None
    created_at: datetime


class AlertRuleWithSecret(AlertRule):
    """A created rule: the webhook secret is shown this once."""

    webhook_secret: str | None


class AlertEvent(BaseModel):
    """One transition: ``firing`` or ``resolved``."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    rule_id: str
    state: str
    value: float | None
    threshold: float
    created_at: datetime
