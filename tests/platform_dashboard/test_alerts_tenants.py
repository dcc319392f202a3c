"""?tenant= on the alert lists: an operator reads one tenant's rules and history; a
tenant's key never reads another's (404, as /api/cost answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from tests.helpers import auth, issue_key
from tests.intelligence_gateway.outbox.support import fast_outbox
from tests.platform_dashboard.test_alerts import ALERTS, AlertsApi, alerts_api, spend_rule
from xynergy.platform.config import Settings
from xynergy.platform_dashboard.alerts.config import AlertSettings

EVENTS = f"{ALERTS}/events"


@dataclass
class Tenants:
    api: AlertsApi
    beta_id: str
    acme_rule: str
    admin: dict[str, str]  # admin on the operator tenant
    operator_reader: dict[str, str]  # metrics:read on the operator tenant, not admin


@pytest.fixture
async def tenants(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Tenants]:
    settings = make_settings(database_url=database_url, **fast_outbox())
    async with alerts_api(settings, AlertSettings(install_defaults=False)) as api:
        created = await api.client.post(ALERTS, json=spend_rule(), headers=api.acme)
        assert created.status_code == 201, created.text
        beta_id, _ = await issue_key(api.platform, tenant="beta", scopes=("metrics:read",))
        await api.spend(api.acme_id, 5.0)
        await api.evaluator.evaluate()  # acme's rule fires: one history row
        _, admin = await issue_key(api.platform, tenant="platform", scopes=("admin",))
        _, reader = await issue_key(api.platform, tenant="platform", scopes=("metrics:read",))
        yield Tenants(api, beta_id, created.json()["id"], auth(admin.secret), auth(reader.secret))


def ids(body: dict[str, list[dict[str, str]]], field: str = "id") -> list[str]:
    return [item[field] for item in body["items"]]


class TestOperatorPicksATenant:
    @pytest.mark.parametrize("who", ["admin", "operator_reader"])
    async def test_rules_and_history_of_the_named_tenant(self, tenants: Tenants, who: str) -> None:
        headers = tenants.admin if who == "admin" else tenants.operator_reader
        client, acme = tenants.api.client, {"tenant": tenants.api.acme_id}

        rules = await client.get(ALERTS, params=acme, headers=headers)
        events = await client.get(EVENTS, params=acme, headers=headers)
        own = await client.get(ALERTS, headers=headers)

        assert rules.status_code == 200, rules.text
        assert ids(rules.json()) == [tenants.acme_rule]
        assert rules.json()["items"][0]["state"] == "firing"
        assert ids(events.json(), "rule_id") == [tenants.acme_rule]
        assert own.json()["items"] == []  # unnamed: the operator tenant's own rules

    async def test_an_unknown_tenant_is_404(self, tenants: Tenants) -> None:
        answer = await tenants.api.client.get(
            ALERTS, params={"tenant": "0" * 32}, headers=tenants.admin
        )
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"

    async def test_a_malformed_tenant_is_422(self, tenants: Tenants) -> None:
        answer = await tenants.api.client.get(
            ALERTS, params={"tenant": "x" * 33}, headers=tenants.admin
        )
        assert answer.status_code == 422


class TestATenantNeverSeesAnother:
    @pytest.mark.parametrize("path", [ALERTS, EVENTS])
    async def test_naming_another_tenant_is_404(self, tenants: Tenants, path: str) -> None:
        answer = await tenants.api.client.get(
            path, params={"tenant": tenants.api.acme_id}, headers=tenants.api.beta
        )
        assert answer.status_code == 404
        assert tenants.acme_rule not in answer.text

    @pytest.mark.parametrize("path", [ALERTS, EVENTS])
    async def test_naming_itself_reads_its_own(self, tenants: Tenants, path: str) -> None:
        answer = await tenants.api.client.get(
            path, params={"tenant": tenants.beta_id}, headers=tenants.api.beta
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == []
