"""All SQL of alerts: rules (tenant-scoped), their events, and the evaluator's pages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.pagination import PageParams, created_page_rows
from xynergy.platform_dashboard.alerts.models import AlertEvent, AlertRule

__all__ = ["AlertRepository"]


class AlertRepository:
    """Alert rules and events; every read of a tenant's rows names the tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_rules(self, tenant_id: str) -> int:
        query = select(func.count()).select_from(AlertRule).where(AlertRule.tenant_id == tenant_id)
        return int(await self.session.scalar(query) or 0)

    async def count_platform_rules(self, tenant_id: str) -> int:
        query = (
            select(func.count())
            .select_from(AlertRule)
            .where(AlertRule.tenant_id == tenant_id, AlertRule.platform_wide.is_(True))
        )
        return int(await self.session.scalar(query) or 0)

    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule | None:
        query = select(AlertRule).where(AlertRule.id == rule_id, AlertRule.tenant_id == tenant_id)
        return (await self.session.scalars(query.limit(1))).first()

    async def rule_page(self, tenant_id: str, params: PageParams) -> Sequence[AlertRule]:
        query = select(AlertRule).where(AlertRule.tenant_id == tenant_id)
        return await created_page_rows(self.session, query, AlertRule, params)

    async def event_page(
        self, tenant_id: str, params: PageParams, rule_id: str | None
    ) -> Sequence[AlertEvent]:
        query = select(AlertEvent).where(AlertEvent.tenant_id == tenant_id)
        if rule_id is not None:
            query = query.where(AlertEvent.rule_id == rule_id)
        return await created_page_rows(self.session, query, AlertEvent, params)

    async def tenants_watching(self, kind: str, limit: int) -> Sequence[str]:
        """Tenants with an enabled rule of ``kind`` (bounded): whose figures to read
        before the evaluator's transaction opens."""
        query = (
            select(AlertRule.tenant_id)
            .where(AlertRule.enabled.is_(True), AlertRule.kind == kind)
            .group_by(AlertRule.tenant_id)
            .order_by(AlertRule.tenant_id)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def enabled_after(self, after: str | None, limit: int) -> Sequence[AlertRule]:
        """Enabled rules by id, after ``after``: the evaluator's bounded pages."""
        query = select(AlertRule).where(AlertRule.enabled.is_(True))
        if after is not None:
            query = query.where(AlertRule.id > after)
        query = query.order_by(AlertRule.id).limit(limit).with_for_update(skip_locked=True)
        return (await self.session.scalars(query)).all()
