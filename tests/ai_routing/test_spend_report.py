"""GET /api/spend, /api/spend/overview and /api/spend/tenants: sums, budgets, projection,
who sees what, and the bounds of their inputs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.ai_routing.gateway import Gateway, gateway
from tests.ai_routing.spend_fixtures import daily_row, insert_daily
from tests.helpers import auth, issue_key
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow

pytestmark = pytest.mark.asyncio

KEY_A = "a" * 32
KEY_B = "b" * 32


@dataclass
class World:
    gw: Gateway
    other_tenant: str
    other: dict[str, str]  # the other tenant's ai:usage key
    tenant_metrics: dict[str, str]  # metrics:read of the gateway's tenant
    operator_metrics: dict[str, str]  # metrics:read of the operator tenant
    admin: dict[str, str]


@pytest.fixture
async def world(make_settings: Callable[..., Settings], database_url: str) -> AsyncIterator[World]:
    async with gateway(make_settings(database_url=database_url)) as gw:
        platform = gw.platform
        other_tenant, other = await issue_key(platform, tenant="globex", scopes=("ai:usage",))
        _, tenant_metrics = await issue_key(platform, tenant="acme", scopes=("metrics:read",))
        _, operator_metrics = await issue_key(platform, tenant="platform", scopes=("metrics:read",))
        _, admin = await issue_key(platform, tenant="platform", scopes=("admin",))
        today = utcnow().date()
        first = today.replace(day=1)
        await insert_daily(
            platform,
            [
                # acme: two keys, two models, two tasks, a cache hit's savings.
                daily_row(gw.tenant_id, first, key_id=KEY_A, model="m1", cost_nanos=3_000_000_000),
                daily_row(
                    gw.tenant_id,
                    today,
                    key_id=KEY_B,
                    model="m2",
                    task="keywords",
                    requests=4,
                    cost_nanos=1_000_000_000,
                    saved_nanos=250_000_000,
                    cache_hits=2,
                    errors=1,
                ),
                daily_row(gw.tenant_id, today, key_id="", model="m1", cost_nanos=500_000_000),
                # Last month's: outside this month's report.
                daily_row(gw.tenant_id, first - timedelta(days=1), cost_nanos=9_000_000_000),
                # globex: another tenant.
                daily_row(other_tenant, today, model="m9", cost_nanos=7_000_000_000),
            ],
        )
        yield World(
            gw,
            other_tenant,
            auth(other.secret),
            auth(tenant_metrics.secret),
            auth(operator_metrics.secret),
            auth(admin.secret),
        )


class TestTenantSpend:
    async def test_the_month_is_summed_per_day_model_task_and_key(self, world: World) -> None:
        gw = world.gw
        report = (await gw.client.get("/api/spend", headers=gw.headers)).json()
        assert report["tenant_id"] == gw.tenant_id
        assert report["totals"]["cost_usd"] == "4.500000000"
        assert report["totals"]["saved_usd"] == "0.250000000"
        assert report["totals"]["requests"] == 6
        assert report["totals"]["cache_hits"] == 2
        assert report["totals"]["errors"] == 1
        models = {item["name"]: item["cost_usd"] for item in report["models"]["items"]}
        assert models == {"m1": "3.500000000", "m2": "1.000000000"}
        assert [item["name"] for item in report["keys"]["items"]] == [KEY_A, KEY_B, ""]
        assert {item["name"] for item in report["tasks"]["items"]} == {"chat", "keywords"}
        assert report["tenants"] is None
        assert sum(Decimal(day["cost_usd"]) for day in report["days"]) == Decimal("4.5")

    async def test_groups_past_the_top_n_are_summed_as_other(
        self, make_settings: Callable[..., Settings], tmp_path: object
    ) -> None:
        from xynergy.ai_routing.config import AiSettings

        async with gateway(make_settings(), AiSettings(spend_top_groups=2)) as gw:
            today = utcnow().date()
            await insert_daily(
                gw.platform,
                [
                    daily_row(gw.tenant_id, today, key_id=f"{n:032x}", cost_nanos=n * 1_000)
                    for n in range(1, 6)
                ],
            )
            report = (await gw.client.get("/api/spend", headers=gw.headers)).json()
        keys = report["keys"]
        assert [item["cost_usd"] for item in keys["items"]] == ["0.000005000", "0.000004000"]
        assert keys["other"]["cost_usd"] == "0.000006000"
        assert keys["other"]["requests"] == 3

    async def test_month_to_date_is_set_against_the_tenant_and_key_budgets(
        self, world: World
    ) -> None:
        gw = world.gw
        for body in (
            {"period": "month", "limit_usd": "10"},
            {"period": "month", "key_id": gw.key_id, "limit_usd": "2"},
            {"period": "day", "limit_usd": "1"},  # not a month budget: not compared
        ):
            response = await gw.client.put("/api/budgets", json=body, headers=gw.headers)
            assert response.status_code == 200, response.text
        await insert_daily(
            gw.platform,
            [daily_row(gw.tenant_id, utcnow().date(), key_id=gw.key_id, cost_nanos=500_000_000)],
        )
        report = (await gw.client.get("/api/spend", headers=gw.headers)).json()
        budgets = {budget["key_id"]: budget for budget in report["budgets"]}
        assert set(budgets) == {None, gw.key_id}
        assert budgets[None] == {
            "key_id": None,
            "limit_usd": "10.000000000",
            "spent_usd": "5.000000000",
            "percent": 50.0,
        }
        assert budgets[gw.key_id]["spent_usd"] == "0.500000000"
        assert budgets[gw.key_id]["percent"] == 25.0

    async def test_another_tenants_spend_is_never_in_the_report(self, world: World) -> None:
        mine = (await world.gw.client.get("/api/spend", headers=world.gw.headers)).json()
        theirs = (await world.gw.client.get("/api/spend", headers=world.other)).json()
        assert "m9" not in {item["name"] for item in mine["models"]["items"]}
        assert theirs["tenant_id"] == world.other_tenant
        assert theirs["totals"]["cost_usd"] == "7.000000000"


class TestOverview:
    async def test_a_tenant_key_sees_its_own_tenant_and_no_other(self, world: World) -> None:
        client = world.gw.client
        own = await client.get("/api/spend/overview", headers=world.tenant_metrics)
        other = await client.get(
            "/api/spend/overview",
            params={"tenant": world.other_tenant},
            headers=world.tenant_metrics,
        )
        assert own.json()["tenant_id"] == world.gw.tenant_id
        assert own.json()["totals"]["cost_usd"] == "4.500000000"
        assert other.status_code == 404
        assert other.json()["error"] == "not_found"

    @pytest.mark.parametrize("who", ["operator_metrics", "admin"])
    async def test_an_operator_sees_the_platform_or_picks_a_tenant(
        self, world: World, who: str
    ) -> None:
        headers = getattr(world, who)
        client = world.gw.client
        platform = (await client.get("/api/spend/overview", headers=headers)).json()
        picked = (
            await client.get(
                "/api/spend/overview", params={"tenant": world.other_tenant}, headers=headers
            )
        ).json()
        missing = await client.get(
            "/api/spend/overview", params={"tenant": "f" * 32}, headers=headers
        )
        assert platform["tenant_id"] is None
        assert platform["totals"]["cost_usd"] == "11.500000000"
        assert platform["keys"] is None
        tenants = {item["name"]: item["cost_usd"] for item in platform["tenants"]["items"]}
        assert tenants == {world.other_tenant: "7.000000000", world.gw.tenant_id: "4.500000000"}
        assert picked["tenant_id"] == world.other_tenant
        assert picked["totals"]["cost_usd"] == "7.000000000"
        assert missing.status_code == 404


class TestTenantsPage:
    async def test_operators_page_through_every_tenant(self, world: World) -> None:
        client = world.gw.client
        first = await client.get(
            "/api/spend/tenants", params={"limit": 1}, headers=world.operator_metrics
        )
        second = await client.get(
            "/api/spend/tenants",
            params={"limit": 1, "cursor": first.json()["next_cursor"]},
            headers=world.operator_metrics,
        )
        items = first.json()["items"] + second.json()["items"]
        assert second.json()["next_cursor"] is None
        assert {item["tenant_id"]: item["cost_usd"] for item in items} == {
            world.gw.tenant_id: "4.500000000",
            world.other_tenant: "7.000000000",
        }
        assert {item["name"] for item in items} == {"acme", "globex"}

    async def test_a_tenant_key_is_refused(self, world: World) -> None:
        response = await world.gw.client.get("/api/spend/tenants", headers=world.tenant_metrics)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"


class TestBounds:
    @pytest.mark.parametrize(
        "month",
        ["2026-13", "2026-00", "2026-1", "26-12", "2026-12-01", "abcd-ef", "0000-01", "2999-01"],
    )
    async def test_a_month_that_is_not_one_or_in_the_future_is_422(
        self, world: World, month: str
    ) -> None:
        response = await world.gw.client.get(
            "/api/spend", params={"month": month}, headers=world.gw.headers
        )
        assert response.status_code == 422, response.text
        assert set(response.json()) == {"error", "detail", "request_id"}

    async def test_a_month_beyond_the_reach_is_422(self, world: World) -> None:
        response = await world.gw.client.get(
            "/api/spend", params={"month": "2001-01"}, headers=world.gw.headers
        )
        assert response.status_code == 422
        assert "reach back" in response.json()["detail"]

    async def test_a_past_month_in_reach_is_reported_whole(self, world: World) -> None:
        last = utcnow().date().replace(day=1) - timedelta(days=1)
        response = await world.gw.client.get(
            "/api/spend", params={"month": f"{last:%Y-%m}"}, headers=world.gw.headers
        )
        body = response.json()
        assert body["until"] == last.isoformat()
        assert body["totals"]["cost_usd"] == "9.000000000"
        assert body["projected_month_end_usd"] == "9.000000000"

    async def test_a_forged_cursor_is_400(self, world: World) -> None:
        response = await world.gw.client.get(
            "/api/spend/tenants", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=world.admin
        )
        assert response.status_code == 400

    async def test_a_key_without_the_scope_is_403(self, world: World) -> None:
        response = await world.gw.client.get("/api/spend", headers=world.tenant_metrics)
        assert response.status_code == 403
