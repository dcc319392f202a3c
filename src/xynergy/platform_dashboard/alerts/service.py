"""Alert rules: create, list, change, delete; bounded per tenant; operators' platform rules."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from xynergy.platform.net_policy import is_public_host
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.schemas import Page
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.models import AlertRule
from xynergy.platform_dashboard.alerts.repository import AlertRepository
from xynergy.platform_dashboard.alerts.schemas import (
    PLATFORM_KINDS,
    AlertEvent,
    AlertRuleCreate,
    AlertRuleUpdate,
)
from xynergy.platform_dashboard.alerts.schemas import AlertRule as AlertRuleOut

__all__ = [
    "RuleBounds",
    "create_rule",
    "default_threshold",
    "delete_rule",
    "get_rule",
    "list_events",
    "list_rules",
    "update_rule",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a display prefix, not a secret
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class RuleBounds:
    """What a request may do: the settings, and whether the caller is an operator."""

    alerts: AlertSettings
    operator: bool
    allow_private_addresses: bool


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def default_threshold(kind: str, alerts: AlertSettings) -> float:
    """The review's threshold of ``kind`` (used when a rule omits one)."""
    defaults = {
        "spend": alerts.default_monthly_spend_usd,
        "budget_percent": alerts.default_budget_percent,
        "cache_hit_rate": alerts.default_cache_hit_percent,
        "memory": alerts.default_resource_percent,
        "file_descriptors": alerts.default_resource_percent,
        "disk": alerts.default_resource_percent,
        "error_rate": 5.0,
        "latency_p99": 1000.0,
        "breaker_open": 0.0,
    }
    return defaults[kind]


def _webhook_url(raw: str | None, bounds: RuleBounds) -> str | None:
    if raw is None or raw == "":
        return None
    if len(raw) > bounds.alerts.webhook_url_max_chars:
        raise ValidationFailed(
            f"webhook_url: at most {bounds.alerts.webhook_url_max_chars} characters."
        )
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed("webhook_url: an http(s) URL with a host.")
    # What a name resolves to is checked again at delivery (platform/outbox).
    if not bounds.allow_private_addresses and not is_public_host(parts.hostname):
        raise ValidationFailed(
            "webhook_url: private, loopback, link-local and other special-purpose addresses "
            "and local names are not allowed."
        )
    return raw


def _check_shape(kind: str, period: str | None, target: str | None, platform_wide: bool) -> None:
    """What a rule of ``kind`` needs, at creation and after every change."""
    if kind == "spend" and period is None:
        raise ValidationFailed("period: spend rules need 'day' or 'month'.")
    if kind != "spend" and period is not None:
        raise ValidationFailed("period: only spend rules have one.")
    if kind == "budget_percent" and (platform_wide or target):
        # The AI Routing Engine keeps budgets per tenant: the platform has none.
        raise ValidationFailed(
            "kind: budget_percent rules watch the tenant's own month budget: "
            "no platform_wide, no target."
        )
    if kind == "breaker_open" and not target:
        raise ValidationFailed("target: breaker_open rules name a breaker's upstream.")


def _checked(data: AlertRuleCreate, bounds: RuleBounds) -> None:
    if (data.platform_wide or data.kind in PLATFORM_KINDS) and not bounds.operator:
        raise Forbidden("Only an operator may watch the whole platform.")
    if data.kind in PLATFORM_KINDS and not data.platform_wide:
        raise ValidationFailed(f"kind: {data.kind} rules watch the platform: set platform_wide.")
    _check_shape(data.kind, data.period, data.target, data.platform_wide)
    if data.window_minutes > bounds.alerts.window_minutes_max:
        raise ValidationFailed(f"window_minutes: at most {bounds.alerts.window_minutes_max}.")


async def create_rule(
    session: AsyncSession, *, tenant_id: str, data: AlertRuleCreate, bounds: RuleBounds
) -> AlertRule:
    """Create a rule for ``tenant_id``; its webhook secret is readable on the result once."""
    _checked(data, bounds)
    url = _webhook_url(data.webhook_url, bounds)
    repository = AlertRepository(session)
    if await repository.count_rules(tenant_id) >= bounds.alerts.rules_per_tenant_max:
        raise Conflict(f"A tenant holds at most {bounds.alerts.rules_per_tenant_max} alert rules.")
    now = utcnow()
    rule = AlertRule(
        tenant_id=tenant_id,
        platform_wide=data.platform_wide,
        name=data.name,
        kind=data.kind,
        threshold=(
            data.threshold
            if data.threshold is not None
            else default_threshold(data.kind, bounds.alerts)
        ),
        period=data.period,
        window_minutes=data.window_minutes,
        target=data.target,
        webhook_url=url,
        webhook_secret=_new_secret() if url else None,
        enabled=data.enabled,
        state="ok",
        state_since=now,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    await session.flush()
    return rule


async def get_rule(session: AsyncSession, *, tenant_id: str, rule_id: str) -> AlertRule:
    """One of ``tenant_id``'s rules; another tenant's is not found."""
    rule = await AlertRepository(session).get_rule(tenant_id, rule_id)
    if rule is None:
        raise NotFound("No such alert rule.")
    return rule


async def update_rule(
    session: AsyncSession,
    *,
    tenant_id: str,
    rule_id: str,
    changes: AlertRuleUpdate,
    bounds: RuleBounds,
) -> tuple[AlertRule, str | None]:
    """Apply ``changes``; a first webhook URL or a rotation answers the new secret (once)."""
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    if rule.platform_wide and not bounds.operator:
        raise Forbidden("Only an operator may change a platform-wide rule.")
    fields = changes.model_fields_set
    if "window_minutes" in fields and changes.window_minutes is not None:
        if changes.window_minutes > bounds.alerts.window_minutes_max:
            raise ValidationFailed(f"window_minutes: at most {bounds.alerts.window_minutes_max}.")
        rule.window_minutes = changes.window_minutes
    period = changes.period if "period" in fields else rule.period
    target = changes.target if "target" in fields else rule.target
    _check_shape(rule.kind, period, target, rule.platform_wide)
    rule.period, rule.target = period, target
    new_secret: str | None = None
    if "webhook_url" in fields:
        rule.webhook_url = _webhook_url(changes.webhook_url, bounds)
        if rule.webhook_url and not rule.webhook_secret:
            # A rule made without a URL (the defaults) gets its secret now, shown once.
            new_secret = rule.webhook_secret = _new_secret()
    if changes.rotate_webhook_secret:
        if not rule.webhook_url:
            raise ValidationFailed("rotate_webhook_secret: the rule has no webhook_url.")
        # Messages still queued are signed at delivery, so they carry the new secret.
        new_secret = rule.webhook_secret = _new_secret()
    if changes.name is not None:
        rule.name = changes.name
    if changes.threshold is not None:
        rule.threshold = changes.threshold
    if changes.enabled is not None:
        rule.enabled = changes.enabled
    rule.updated_at = utcnow()
    await session.flush()
    return rule, new_secret


async def delete_rule(
    session: AsyncSession, *, tenant_id: str, rule_id: str, bounds: RuleBounds
) -> None:
    """Delete a rule and its history (its pending notifications fail: no destination)."""
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    if rule.platform_wide and not bounds.operator:
        raise Forbidden("Only an operator may delete a platform-wide rule.")
    await session.delete(rule)
    await session.flush()


async def list_rules(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> Page[AlertRuleOut]:
    """One newest-first page of ``tenant_id``'s rules."""
    rows = await AlertRepository(session).rule_page(tenant_id, params)
    items, cursor = split_page(rows, params, lambda rule: (rule.created_at, rule.id))
    return Page[AlertRuleOut](
        items=[AlertRuleOut.model_validate(rule) for rule in items], next_cursor=cursor
    )


async def list_events(
    session: AsyncSession, *, tenant_id: str, params: PageParams, rule_id: str | None
) -> Page[AlertEvent]:
    """One newest-first page of ``tenant_id``'s alert transitions."""
    rows = await AlertRepository(session).event_page(tenant_id, params, rule_id)
    items, cursor = split_page(rows, params, lambda event: (event.created_at, event.id))
    return Page[AlertEvent](
        items=[AlertEvent.model_validate(event) for event in items], next_cursor=cursor
    )
