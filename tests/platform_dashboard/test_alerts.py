"""Alerts: a rule fires once, its webhook arrives signed, it resolves; tenants stay apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, insert, select
from structlog.testing import capture_logs

from tests.helpers import auth, issue_key, running
from tests.intelligence_gateway.outbox.support import WebhookReceiver, fast_outbox, wait_until
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups.models import AI_ROLLUPS, REQUEST_ROLLUPS
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.evaluate import JOB_NAME, AlertEvaluator
from xynergy.platform_dashboard.alerts.models import AlertRule
from xynergy.platform_dashboard.alerts.resolver import ALERT_CHANNEL
from xynergy.platform_dashboard.app import create_platform_dashboard_app

ALERTS = "/api/alerts"
WRITE = ("metrics:read", "alerts:write")


@dataclass
class AlertsApi:
    client: httpx.AsyncClient
    platform: Platform
    evaluator: AlertEvaluator
    acme: dict[str, str]
    beta: dict[str, str]
    acme_id: str

    async def spend(self, tenant_id: str, usd: float) -> None:
        """Record ``usd`` of AI cost for ``tenant_id`` in this minute's rollups."""
        async with unit_of_work(self.platform.sessionmaker) as session:
            await session.execute(
                insert(AI_ROLLUPS).values(
                    minute=int(utcnow().timestamp()) // 60,
                    replica_id="test",
                    tenant_id=tenant_id,
                    model="offline",
                    requests=1,
                    errors=0,
                    cache_hits=0,
                    input_tokens=1,
                    output_tokens=1,
                    cost_nanos=int(usd * 1e9),
                )
            )

    async def clear_spend(self) -> None:
        async with unit_of_work(self.platform.sessionmaker) as session:
            await session.execute(delete(AI_ROLLUPS))

    async def rule_count(self) -> int:
        async with unit_of_work(self.platform.sessionmaker) as session:
            return int(await session.scalar(select(func.count()).select_from(AlertRule)) or 0)


@asynccontextmanager
async def alerts_api(settings: Settings, alerts: AlertSettings) -> AsyncIterator[AlertsApi]:
    app = create_platform_dashboard_app(settings)
    app.state.alerts = alerts
    async with running(app) as client:
        platform: Platform = app.state.platform
        acme_id, acme = await issue_key(platform, tenant="acme", scopes=WRITE)
        _, beta = await issue_key(platform, tenant="beta", scopes=WRITE)
        yield AlertsApi(
            client=client,
            platform=platform,
            evaluator=app.state.alert_evaluator,
            acme=auth(acme.secret),
            beta=auth(beta.secret),
            acme_id=acme_id,
        )


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[AlertsApi]:
    # No defaults: these tests count the rules they make.
    settings = make_settings(database_url=database_url, **fast_outbox())
    async with alerts_api(settings, AlertSettings(install_defaults=False)) as running_api:
        yield running_api


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running_receiver:
        yield running_receiver


def spend_rule(**fields: Any) -> dict[str, Any]:
    return {"name": "Daily AI spend", "kind": "spend", "period": "day", "threshold": 1.0} | fields


class TestSpendAlert:
    async def test_fires_once_signed_webhook_then_resolves(
        self, api: AlertsApi, receiver: WebhookReceiver
    ) -> None:
        created = await api.client.post(
            ALERTS, json=spend_rule(webhook_url=receiver.url), headers=api.acme
        )
        assert created.status_code == 201, created.text
        rule = created.json()
        receiver.secret = rule["webhook_secret"]
        assert rule["webhook_secret"].startswith("whsec_")

        await api.spend(api.acme_id, 0.5)
        assert await api.evaluator.evaluate() == 0  # under the threshold
        await api.spend(api.acme_id, 1.0)
        with capture_logs() as logged:
            assert await api.evaluator.evaluate() == 1
            assert await api.evaluator.evaluate() == 0  # still firing: no second alert
        firing_lines = [line for line in logged if line["event"] == "alert.firing"]
        assert [(line["rule_id"], line["value"]) for line in firing_lines] == [(rule["id"], 1.5)]
        await wait_until(lambda: len(receiver.delivered) == 1)

        [firing] = receiver.delivered.values()
        assert receiver.events == ["alert.firing"]
        assert receiver.bad_signatures == 0
        assert (firing["state"], firing["rule"]["id"], firing["value"]) == (
            "firing",
            rule["id"],
            1.5,
        )
        shown = (await api.client.get(f"{ALERTS}/{rule['id']}", headers=api.acme)).json()
        assert (shown["state"], shown["last_value"]) == ("firing", 1.5)
        assert "webhook_secret" not in shown

        await api.clear_spend()
        assert await api.evaluator.evaluate() == 1
        assert await api.evaluator.evaluate() == 0
        await wait_until(lambda: len(receiver.delivered) == 2)
        assert receiver.events == ["alert.firing", "alert.resolved"]
        assert receiver.bad_signatures == 0

        history = (await api.client.get(f"{ALERTS}/events", headers=api.acme)).json()
        assert [event["state"] for event in history["items"]] == ["resolved", "firing"]

    async def test_runs_as_the_runtime_minutely_job_and_through_the_outbox(
        self, api: AlertsApi
    ) -> None:
        assert api.platform.every_minute_jobs[JOB_NAME] is api.evaluator
        assert ALERT_CHANNEL in api.platform.outbox.resolvers.kinds


class TestTenantIsolation:
    async def test_another_tenant_neither_sees_nor_fires_on_acme_data(self, api: AlertsApi) -> None:
        acme_rule = (await api.client.post(ALERTS, json=spend_rule(), headers=api.acme)).json()
        beta_rule = (await api.client.post(ALERTS, json=spend_rule(), headers=api.beta)).json()
        await api.spend(api.acme_id, 5.0)

        assert await api.evaluator.evaluate() == 1
        beta = api.beta
        assert (
            await api.client.get(f"{ALERTS}/{acme_rule['id']}", headers=beta)
        ).status_code == 404
        patched = await api.client.patch(
            f"{ALERTS}/{acme_rule['id']}", json={"threshold": 99}, headers=beta
        )
        assert patched.status_code == 404
        deleted = await api.client.delete(f"{ALERTS}/{acme_rule['id']}", headers=beta)
        assert deleted.status_code == 404
        listed = (await api.client.get(ALERTS, headers=beta)).json()
        assert [item["id"] for item in listed["items"]] == [beta_rule["id"]]
        assert listed["items"][0]["state"] == "ok"
        assert (await api.client.get(f"{ALERTS}/events", headers=beta)).json()["items"] == []


class TestBounds:
    @pytest.mark.parametrize(
        ("body", "status"),
        [
            (spend_rule(kind="bogus"), 422),
            (spend_rule(name="x" * 201), 422),
            (spend_rule(threshold=-1), 422),
            (spend_rule(period=None), 422),
            (spend_rule(extra="field"), 422),
            ({"name": "Errors", "kind": "error_rate", "platform_wide": True}, 403),
            (spend_rule(platform_wide=True), 403),
            (spend_rule(webhook_url="ftp://hooks.example/x"), 422),
        ],
    )
    async def test_bad_rules_are_refused_and_nothing_is_written(
        self, api: AlertsApi, body: dict[str, Any], status: int
    ) -> None:
        answer = await api.client.post(ALERTS, json=body, headers=api.acme)

        assert answer.status_code == status, answer.text
        assert set(answer.json()) >= {"error", "detail", "request_id"}
        assert await api.rule_count() == 0

    async def test_writing_needs_the_alerts_write_scope(self, api: AlertsApi) -> None:
        _, reader = await issue_key(api.platform, tenant="acme", scopes=("metrics:read",))

        answer = await api.client.post(ALERTS, json=spend_rule(), headers=auth(reader.secret))

        assert answer.status_code == 403
        assert (await api.client.get(ALERTS, headers=auth(reader.secret))).status_code == 200
        assert await api.rule_count() == 0

    async def test_rules_per_tenant_are_bounded(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        limited = AlertSettings(install_defaults=False, rules_per_tenant_max=2)
        async with alerts_api(settings, limited) as api:
            for _ in range(2):
                made = await api.client.post(ALERTS, json=spend_rule(), headers=api.acme)
                assert made.status_code == 201
            refused = await api.client.post(ALERTS, json=spend_rule(), headers=api.acme)
            other = await api.client.post(ALERTS, json=spend_rule(), headers=api.beta)

            assert refused.status_code == 409
            assert other.status_code == 201  # the bound is per tenant
            assert await api.rule_count() == 3

    async def test_pages_are_cursor_bounded(self, api: AlertsApi) -> None:
        for _ in range(3):
            await api.client.post(ALERTS, json=spend_rule(), headers=api.acme)

        first = (await api.client.get(ALERTS, params={"limit": 2}, headers=api.acme)).json()
        second = (
            await api.client.get(
                ALERTS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=api.acme
            )
        ).json()

        assert len(first["items"]) == 2
        assert len(second["items"]) == 1
        assert second["next_cursor"] is None


class TestDefaults:
    async def test_the_operator_gets_the_review_rules_once(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        async with alerts_api(settings, AlertSettings()) as api:
            _, operator = await issue_key(api.platform, tenant="platform", scopes=("admin",))
            await api.evaluator.evaluate()
            await api.evaluator.evaluate()

            listed = (await api.client.get(ALERTS, headers=auth(operator.secret))).json()
            rules = {item["kind"]: item for item in listed["items"]}
            assert set(rules) == {"spend", "cache_hit_rate", "memory", "file_descriptors", "disk"}
            assert rules["spend"]["threshold"] == 3000.0
            assert rules["spend"]["period"] == "month"
            assert rules["cache_hit_rate"]["threshold"] == 85.0
            assert all(rule["platform_wide"] for rule in rules.values())
            assert await api.rule_count() == 5
            await asyncio.sleep(0)


class TestErrorRateAlert:
    async def test_an_operator_rule_fires_on_5xx_and_resolves_when_they_dilute(
        self, api: AlertsApi
    ) -> None:
        _, operator = await issue_key(api.platform, tenant="platform", scopes=("admin",))
        body = {"name": "Errors", "kind": "error_rate", "threshold": 10.0, "platform_wide": True}
        made = await api.client.post(ALERTS, json=body, headers=auth(operator.secret))
        assert made.status_code == 201, made.text

        async def traffic(requests: int, errors: int) -> None:
            async with unit_of_work(api.platform.sessionmaker) as session:
                await session.execute(
                    insert(REQUEST_ROLLUPS).values(
                        minute=int(utcnow().timestamp()) // 60,
                        replica_id="test",
                        service="aso-engine",
                        method="GET",
                        route="/api/content",
                        requests=requests,
                        errors_5xx=errors,
                    )
                )

        await traffic(10, 5)
        assert await api.evaluator.evaluate() == 1
        await traffic(100, 0)  # 5 of 110: under 10 %
        assert await api.evaluator.evaluate() == 1
        events = (await api.client.get(f"{ALERTS}/events", headers=auth(operator.secret))).json()[
            "items"
        ]
        assert [event["state"] for event in events] == ["resolved", "firing"]
