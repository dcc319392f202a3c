"""budget_percent: a tenant's month-to-date AI spend against its month budget, as the
AI Routing Engine reports it, fires over the threshold (default 80 %) and resolves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.ai_routing.spend_fixtures import daily_row, insert_daily
from tests.helpers import auth, issue_key
from tests.platform_dashboard.harness import DashboardApi, all_in_one
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.alerts import readers
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.evaluate import AlertEvaluator

ALERTS = "/platform-dashboard/api/alerts"
BUDGETS = "/ai-routing-engine/api/budgets"
BUDGET_RULE = {"name": "Budget use", "kind": "budget_percent"}


@dataclass
class BudgetWorld:
    api: DashboardApi
    evaluator: AlertEvaluator
    acme_id: str
    acme: dict[str, str]

    async def spend(self, usd: float) -> None:
        day = utcnow().date()
        await insert_daily(
            self.api.platform,
            [daily_row(self.acme_id, day, model=f"m{usd}", cost_nanos=int(usd * 1e9))],
        )

    async def budget(self, usd: str) -> None:
        body = {"period": "month", "limit_usd": usd}
        answer = await self.api.client.put(BUDGETS, json=body, headers=self.acme)
        assert answer.status_code == 200, answer.text

    async def rule(self, rule_id: str) -> Any:
        return (await self.api.client.get(f"{ALERTS}/{rule_id}", headers=self.acme)).json()

    async def history(self) -> list[str]:
        body = (await self.api.client.get(f"{ALERTS}/events", headers=self.acme)).json()
        return [event["state"] for event in body["items"]]


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[BudgetWorld]:
    async with all_in_one(settings) as api:
        scopes = ("metrics:read", "alerts:write", "ai:budgets")
        acme_id, key = await issue_key(api.platform, tenant="acme", scopes=scopes)
        # Its own evaluator: no default rules to count around.
        evaluator = AlertEvaluator(api.platform, AlertSettings(install_defaults=False))
        yield BudgetWorld(api, evaluator, acme_id, auth(key.secret))


class TestBudgetPercent:
    async def test_fires_over_80_percent_of_the_budget_and_resolves(
        self, world: BudgetWorld
    ) -> None:
        await world.budget("10")
        made = await world.api.client.post(ALERTS, json=BUDGET_RULE, headers=world.acme)
        assert made.status_code == 201, made.text
        rule_id = made.json()["id"]
        assert made.json()["threshold"] == 80.0  # the default

        await world.spend(7.0)
        await world.evaluator.evaluate()
        shown = await world.rule(rule_id)
        assert (shown["state"], shown["last_value"]) == ("ok", 70.0)

        await world.spend(2.0)
        await world.evaluator.evaluate()
        shown = await world.rule(rule_id)
        assert (shown["state"], shown["last_value"]) == ("firing", 90.0)

        await world.budget("20")  # the budget raised: 9 of 20 USD
        await world.evaluator.evaluate()
        shown = await world.rule(rule_id)
        assert (shown["state"], shown["last_value"]) == ("ok", 45.0)
        assert await world.history() == ["resolved", "firing"]

    async def test_without_a_budget_it_keeps_its_state(self, world: BudgetWorld) -> None:
        made = await world.api.client.post(ALERTS, json=BUDGET_RULE, headers=world.acme)
        await world.spend(50.0)
        await world.evaluator.evaluate()
        shown = await world.rule(made.json()["id"])
        assert (shown["state"], shown["last_value"]) == ("ok", None)
        assert shown["evaluated_at"] is not None

    async def test_another_tenants_spend_does_not_count(self, world: BudgetWorld) -> None:
        await world.budget("10")
        made = await world.api.client.post(ALERTS, json=BUDGET_RULE, headers=world.acme)
        beta_id, _ = await issue_key(world.api.platform, tenant="beta", scopes=("metrics:read",))
        await insert_daily(
            world.api.platform, [daily_row(beta_id, utcnow().date(), cost_nanos=int(50e9))]
        )
        await world.evaluator.evaluate()
        shown = await world.rule(made.json()["id"])
        assert (shown["state"], shown["last_value"]) == ("ok", 0.0)

    async def test_the_operator_tenants_rule_reads_its_own_budget(self, world: BudgetWorld) -> None:
        scopes = ("metrics:read", "alerts:write", "ai:budgets")
        platform_id, key = await issue_key(world.api.platform, tenant="platform", scopes=scopes)
        operator = auth(key.secret)
        answer = await world.api.client.put(
            BUDGETS, json={"period": "month", "limit_usd": "10"}, headers=operator
        )
        assert answer.status_code == 200, answer.text
        made = await world.api.client.post(ALERTS, json=BUDGET_RULE, headers=operator)
        await insert_daily(
            world.api.platform,
            [
                daily_row(platform_id, utcnow().date(), cost_nanos=int(1e9)),
                daily_row(world.acme_id, utcnow().date(), cost_nanos=int(50e9)),
            ],
        )
        await world.evaluator.evaluate()
        shown = await world.api.client.get(f"{ALERTS}/{made.json()['id']}", headers=operator)
        # Not the whole platform's spend (51 USD) that an operator's unnamed read covers.
        assert (shown.json()["state"], shown.json()["last_value"]) == ("ok", 10.0)

    @pytest.mark.parametrize(
        "extra", [{"platform_wide": True}, {"target": "anything"}, {"period": "month"}]
    )
    async def test_it_watches_only_the_tenants_own_budget(
        self, world: BudgetWorld, extra: dict[str, Any]
    ) -> None:
        answer = await world.api.client.post(
            ALERTS, json=BUDGET_RULE | extra, headers=world.api.operator
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "validation_failed"

    async def test_the_budget_is_read_before_any_rule_row_is_locked(
        self, world: BudgetWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A call to another service never runs inside the evaluator's transaction: on
        PostgreSQL the rules are taken FOR UPDATE SKIP LOCKED, and a slow engine would
        hold those locks (and a pooled connection) for its whole timeout."""
        await world.budget("10")
        made = await world.api.client.post(ALERTS, json=BUDGET_RULE, headers=world.acme)
        rule_id = made.json()["id"]
        locked_during_read: list[bool] = []
        real_read = readers.budget_percent

        async def probing_read(platform: Platform, tenant_id: str) -> float | None:
            engine = create_async_engine(world.api.platform.settings.database_url)
            try:
                async with engine.connect() as connection:
                    probe = text("SELECT id FROM alert_rules WHERE id = :id")
                    if connection.dialect.name == "postgresql":
                        probe = text("SELECT id FROM alert_rules WHERE id = :id FOR UPDATE NOWAIT")
                    try:
                        await connection.execute(probe, {"id": rule_id})
                        locked_during_read.append(False)
                    except DBAPIError:
                        locked_during_read.append(True)
            finally:
                await engine.dispose()
            return await real_read(platform, tenant_id)

        monkeypatch.setattr(readers, "budget_percent", probing_read)
        await world.spend(9.0)
        await world.evaluator.evaluate()
        assert locked_during_read == [False]  # read once for the tenant, nothing held
        assert (await world.rule(rule_id))["state"] == "firing"
