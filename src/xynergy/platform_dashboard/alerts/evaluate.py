"""The minutely evaluation: read each enabled rule's value, record transitions, notify.

A rule fires once when its condition starts to hold and resolves once when it
stops: each transition writes one event, one outbox message (a signed webhook,
when the rule has a URL) and one log line, all in the transaction that changes
the rule's state, so a tick re-run after a crash finds the state already moved
and sends nothing twice. Rules are read in pages by id under ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL), so two evaluations at once never both move one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.outbox import enqueue, render_payload
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import Tenant
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.models import AlertEvent, AlertRule
from xynergy.platform_dashboard.alerts.readers import fires, read_budgets, read_value
from xynergy.platform_dashboard.alerts.repository import AlertRepository
from xynergy.platform_dashboard.alerts.resolver import ALERT_CHANNEL

__all__ = ["JOB_NAME", "AlertEvaluator"]

log = get_logger(__name__)

JOB_NAME = "dashboard.alerts"  # its name among the runtime's minutely jobs


class AlertEvaluator:
    """Evaluates every enabled rule; ``evaluate`` is the minutely job."""

    def __init__(self, platform: Platform, alerts: AlertSettings) -> None:
        self.platform, self.alerts = platform, alerts

    async def __call__(self) -> None:
        await self.evaluate()

    async def evaluate(self, now: datetime | None = None) -> int:
        """Evaluate every enabled rule (bounded); returns the transitions made."""
        moment = now or utcnow()
        if self.alerts.install_defaults:
            await self._install_defaults(moment)
        budgets = await self._read_budgets()
        transitions, seen, after = 0, 0, None
        while seen < self.alerts.evaluate_rules_max:
            limit = min(self.alerts.evaluate_batch, self.alerts.evaluate_rules_max - seen)
            async with unit_of_work(self.platform.sessionmaker) as session:
                rules = await AlertRepository(session).enabled_after(after, limit)
                for rule in rules:
                    transitions += await self._evaluate_one(session, rule, moment, budgets)
            if not rules:
                break
            seen += len(rules)
            after = rules[-1].id
        if transitions:
            self.platform.outbox.notify()
        return transitions

    async def _read_budgets(self) -> dict[str, float]:
        async with unit_of_work(self.platform.sessionmaker) as session:
            tenants = await AlertRepository(session).tenants_watching(
                "budget_percent", self.alerts.evaluate_rules_max
            )
        return await read_budgets(self.platform, tenants) if tenants else {}

    async def _evaluate_one(
        self,
        session: AsyncSession,
        rule: AlertRule,
        now: datetime,
        budgets: Mapping[str, float],
    ) -> int:
        try:
            value = await read_value(session, self.platform, rule, now, budgets)
        except Exception:
            # One unreadable rule (a bad breaker name, a backend hiccup) never stops
            # the others; the next tick tries it again.
            log.warning("alert.read_failed", rule_id=rule.id, kind=rule.kind, exc_info=True)
            return 0
        rule.evaluated_at = now
        if value is None:
            return 0
        rule.last_value = value
        breaking = fires(rule, value)
        if breaking == (rule.state == "firing"):
            return 0
        rule.state = "firing" if breaking else "ok"
        rule.state_since = now
        await self._transition(session, rule, "firing" if breaking else "resolved", value, now)
        return 1

    async def _transition(
        self, session: AsyncSession, rule: AlertRule, state: str, value: float, now: datetime
    ) -> None:
        session.add(
            AlertEvent(
                tenant_id=rule.tenant_id,
                rule_id=rule.id,
                state=state,
                value=value,
                threshold=rule.threshold,
                created_at=now,
            )
        )
        fields = {
            "rule_id": rule.id,
            "tenant_id": rule.tenant_id,
            "kind": rule.kind,
            "value": value,
            "threshold": rule.threshold,
            "platform_wide": rule.platform_wide,
        }
        if state == "firing":
            log.warning("alert.firing", **fields)
        else:
            log.info("alert.resolved", **fields)
        if not rule.webhook_url:
            return
        message_id = new_id()
        document = {
            "id": message_id,
            "event": f"alert.{state}",
            "state": state,
            "value": value,
            "at": now.isoformat(),
            "rule": {
                "id": rule.id,
                "name": rule.name,
                "kind": rule.kind,
                "threshold": rule.threshold,
                "period": rule.period,
                "window_minutes": rule.window_minutes,
                "target": rule.target,
                "platform_wide": rule.platform_wide,
            },
        }
        await enqueue(
            session,
            tenant_id=rule.tenant_id,
            source_kind=ALERT_CHANNEL,
            source_id=rule.id,
            event=f"alert.{state}",
            payload=render_payload(document),
            message_id=message_id,
        )

    async def _install_defaults(self, now: datetime) -> None:
        """The review's platform-wide rules, for the operator tenant while it has none."""
        async with unit_of_work(self.platform.sessionmaker) as session:
            operator = await session.scalar(
                select(Tenant.id).where(Tenant.name == OPERATOR_TENANT_NAME).limit(1)
            )
            if operator is None:
                return
            if await AlertRepository(session).count_platform_rules(operator) > 0:
                return
            for name, kind, threshold, period, window in self._defaults():
                session.add(
                    AlertRule(
                        tenant_id=operator,
                        platform_wide=True,
                        name=name,
                        kind=kind,
                        threshold=threshold,
                        period=period,
                        window_minutes=window,
                        state="ok",
                        state_since=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        log.info("alert.defaults_installed", tenant_id=operator)

    def _defaults(self) -> list[tuple[str, str, float, str | None, int]]:
        resource = self.alerts.default_resource_percent
        return [
            (
                "Platform spend this month",
                "spend",
                self.alerts.default_monthly_spend_usd,
                "month",
                5,
            ),
            ("Cache hit rate", "cache_hit_rate", self.alerts.default_cache_hit_percent, None, 60),
            ("Memory use", "memory", resource, None, 5),
            ("File descriptors", "file_descriptors", resource, None, 5),
            ("Disk use of the data directory", "disk", resource, None, 5),
        ]
