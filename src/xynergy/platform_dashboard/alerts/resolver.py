"""Where an alert rule's notifications go: its webhook URL and secret, at delivery time."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.outbox import Destination
from xynergy.platform_dashboard.alerts.models import AlertRule

__all__ = ["ALERT_CHANNEL", "resolve_rules"]

ALERT_CHANNEL = "alert-channel"  # the outbox source kind of alert notifications


async def resolve_rules(
    session: AsyncSession, source_ids: Collection[str]
) -> dict[str, Destination]:
    """Each rule still there, with its URL (None once removed) and secret."""
    rows = await session.execute(
        select(AlertRule.id, AlertRule.webhook_url, AlertRule.webhook_secret)
        .where(AlertRule.id.in_(sorted(source_ids)))
        .limit(len(source_ids))
    )
    return {row.id: Destination(url=row.webhook_url, secret=row.webhook_secret) for row in rows}
