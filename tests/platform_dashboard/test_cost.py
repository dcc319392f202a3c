"""GET /api/cost and /api/cost/tenants: the AI Routing Engine's spend, through the
service client, as the caller may see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.ai_routing.spend_fixtures import daily_row, insert_daily
from tests.helpers import auth, ensure_tenant, issue_key
from tests.platform_dashboard.harness import DashboardApi, all_in_one
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow

pytestmark = pytest.mark.asyncio

COST = "/api/cost"
TENANTS = "/api/cost/tenants"


@dataclass
class CostWorld:
    api: DashboardApi
    acme: str
    globex: str
    operator_reader: dict[str, str]  # metrics:read on the operator tenant, not admin


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[CostWorld]:
    async with all_in_one(settings) as api:
        acme = await ensure_tenant(api.platform, "acme")
        globex = await ensure_tenant(api.platform, "globex")
        _, operator_reader = await issue_key(
            api.platform, tenant="platform", scopes=("metrics:read",)
        )
        today = utcnow().date()
        await insert_daily(
            api.platform,
            [
                daily_row(acme, today, model="m1", cost_nanos=2_000_000_000, saved_nanos=5),
                daily_row(globex, today, model="m9", cost_nanos=3_000_000_000),
            ],
        )
        yield CostWorld(api, acme, globex, auth(operator_reader.secret))


class TestCost:
    async def test_a_tenant_reader_sees_its_own_spend(self, world: CostWorld) -> None:
        response = await world.api.get(COST)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["tenant_id"] == world.acme
        assert body["totals"]["cost_usd"] == "2.000000000"
        assert body["totals"]["saved_usd"] == "0.000000005"
        assert [item["name"] for item in body["models"]["items"]] == ["m1"]

    async def test_a_tenant_reader_never_sees_another_tenant(self, world: CostWorld) -> None:
        response = await world.api.client.get(
            world.api.prefix + COST, params={"tenant": world.globex}, headers=world.api.reader
        )
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    @pytest.mark.parametrize("who", ["admin", "operator_reader"])
    async def test_an_operator_sees_the_platform_and_may_pick_a_tenant(
        self, world: CostWorld, who: str
    ) -> None:
        headers = world.api.operator if who == "admin" else world.operator_reader
        url = world.api.prefix + COST
        platform = (await world.api.client.get(url, headers=headers)).json()
        picked = (
            await world.api.client.get(url, params={"tenant": world.globex}, headers=headers)
        ).json()
        assert platform["tenant_id"] is None
        assert platform["totals"]["cost_usd"] == "5.000000000"
        assert {item["name"] for item in platform["tenants"]["items"]} == {
            world.acme,
            world.globex,
        }
        assert picked["tenant_id"] == world.globex
        assert picked["totals"]["cost_usd"] == "3.000000000"

    async def test_the_engines_refusal_of_a_month_comes_back_as_422(self, world: CostWorld) -> None:
        response = await world.api.client.get(
            world.api.prefix + COST, params={"month": "2999-01"}, headers=world.api.reader
        )
        assert response.status_code == 422
        assert response.json()["error"] == "validation_failed"
        assert "future" in response.json()["detail"]

    async def test_a_key_without_metrics_read_is_403(self, world: CostWorld) -> None:
        response = await world.api.get(COST, headers=world.api.no_metrics)
        assert response.status_code == 403


class TestTenantCosts:
    async def test_operators_page_through_tenants(self, world: CostWorld) -> None:
        url = world.api.prefix + TENANTS
        first = await world.api.client.get(url, params={"limit": 1}, headers=world.api.operator)
        assert first.status_code == 200, first.text
        cursor = first.json()["next_cursor"]
        second = await world.api.client.get(
            url, params={"limit": 1, "cursor": cursor}, headers=world.api.operator
        )
        items = first.json()["items"] + second.json()["items"]
        assert {item["name"]: item["cost_usd"] for item in items} == {
            "acme": "2.000000000",
            "globex": "3.000000000",
        }
        assert second.json()["next_cursor"] is None

    async def test_a_tenant_reader_is_refused(self, world: CostWorld) -> None:
        response = await world.api.get(TENANTS)
        assert response.status_code == 403
