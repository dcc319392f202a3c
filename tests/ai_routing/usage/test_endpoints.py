"""The usage and budgets API, end to end, on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.ai_routing.usage.conftest import count_budgets, event, make_guard
from tests.helpers import auth, issue_key, running
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.usage.budgets import BudgetGuard
from xynergy.ai_routing.usage.endpoints import router
from xynergy.ai_routing.usage.ledger import UsageLedger
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import BudgetExceeded
from xynergy.platform.runtime import Platform

USAGE = "/api/usage"
BUDGETS = "/api/budgets"
SCOPES = ("ai:usage", "ai:budgets")
UTC_TODAY = utcnow().date()


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    platform: Platform
    guard: BudgetGuard
    tenant_id: str
    key_id: str
    headers: dict[str, str]
    other_tenant_id: str
    other_key_id: str
    other: dict[str, str]

    async def record(self, *events: Any) -> None:
        """Write events through the real ledger."""
        ledger = UsageLedger(
            ai=self.guard.ai, sessionmaker=self.platform.sessionmaker, metrics=self.platform.metrics
        )
        for item in events:
            ledger.record(item)
        assert await ledger.flush() == len(events)

    async def usage(self, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
        response = await self.client.get(USAGE, params=params, headers=headers or self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def put_budget(
        self, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        return await self.client.put(BUDGETS, json=body, headers=headers or self.headers)

    async def budgets(self, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        response = await self.client.get(BUDGETS, headers=headers or self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def _app(settings: Settings, ai: AiSettings) -> FastAPI:
    async def attach_guard(platform: Platform) -> None:
        app.state.ai = SimpleNamespace(budgets=make_guard(platform, ai))

    app = create_service_app(
        slug="ai-routing-engine",
        title="usage test",
        settings=settings,
        routers=[router],
        on_startup=[attach_guard],
    )
    return app


@pytest.fixture
async def api(backend_settings: Settings, ai_settings: AiSettings) -> AsyncIterator[Api]:
    app = _app(backend_settings, ai_settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant="acme", scopes=SCOPES)
        other_id, other = await issue_key(platform, tenant="globex", scopes=SCOPES)
        yield Api(
            app,
            client,
            platform,
            app.state.ai.budgets,
            tenant_id,
            issued.key.id,
            auth(issued.secret),
            other_id,
            other.key.id,
            auth(other.secret),
        )


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == code


class TestUsageReport:
    async def test_groups_by_day_model_and_task(self, api: Api) -> None:
        yesterday = UTC_TODAY - timedelta(days=1)
        await api.record(
            event(api.tenant_id, occurred_at=at(yesterday), cost_nanos=1_500_000_000),
            event(
                api.tenant_id,
                occurred_at=at(yesterday, 23),
                cost_nanos=250,
                cache_hit=True,
                input_tokens=1,
                output_tokens=2,
            ),
            event(api.tenant_id, occurred_at=at(UTC_TODAY, 0), model="big", status="error"),
            event(api.tenant_id, occurred_at=at(UTC_TODAY, 1), task="summarise", deduplicated=True),
        )
        report = await api.usage()
        assert report["since"] == (UTC_TODAY - timedelta(days=29)).isoformat()
        assert report["until"] == UTC_TODAY.isoformat()
        assert report["truncated"] is False
        assert report["rows"] == [
            {
                "day": yesterday.isoformat(),
                "model": "offline-small",
                "task": "chat",
                "requests": 2,
                "input_tokens": 11,
                "output_tokens": 22,
                "cost_usd": "1.500000250",
                "cache_hits": 1,
                "deduplicated": 0,
                "errors": 0,
            },
            {
                "day": UTC_TODAY.isoformat(),
                "model": "big",
                "task": "chat",
                "requests": 1,
                "input_tokens": 10,
                "output_tokens": 20,
                "cost_usd": "0.000001000",
                "cache_hits": 0,
                "deduplicated": 0,
                "errors": 1,
            },
            {
                "day": UTC_TODAY.isoformat(),
                "model": "offline-small",
                "task": "summarise",
                "requests": 1,
                "input_tokens": 10,
                "output_tokens": 20,
                "cost_usd": "0.000001000",
                "cache_hits": 0,
                "deduplicated": 1,
                "errors": 0,
            },
        ]
        assert report["totals"] == {
            "requests": 4,
            "input_tokens": 31,
            "output_tokens": 62,
            "cost_usd": "1.500002250",
            "cache_hits": 1,
            "deduplicated": 1,
            "errors": 1,
        }

    async def test_the_window_is_inclusive_and_filters_days(self, api: Api) -> None:
        days = [date(2026, 1, 1) + timedelta(days=n) for n in range(5)]
        await api.record(*(event(api.tenant_id, occurred_at=at(day)) for day in days))
        report = await api.usage(since="2026-01-02", until="2026-01-04")
        assert [row["day"] for row in report["rows"]] == ["2026-01-02", "2026-01-03", "2026-01-04"]
        assert report["totals"]["requests"] == 3

    async def test_no_usage_is_zeroes(self, api: Api) -> None:
        report = await api.usage()
        assert report["rows"] == []
        assert report["totals"]["requests"] == 0
        assert report["totals"]["cost_usd"] == "0.000000000"

    async def test_another_tenants_usage_is_never_shown(self, api: Api) -> None:
        await api.record(
            event(api.tenant_id, cost_nanos=1),
            event(api.other_tenant_id, cost_nanos=1_000_000_000, model="theirs"),
        )
        mine = await api.usage()
        assert [row["model"] for row in mine["rows"]] == ["offline-small"]
        assert mine["totals"]["cost_usd"] == "0.000000001"
        theirs = await api.usage(api.other)
        assert [row["model"] for row in theirs["rows"]] == ["theirs"]

    async def test_a_tenant_query_parameter_is_ignored(self, api: Api) -> None:
        await api.record(event(api.other_tenant_id))
        report = await api.usage(tenant_id=api.other_tenant_id)
        assert report["rows"] == []

    async def test_rows_beyond_the_bound_are_truncated_but_totalled(self, api: Api) -> None:
        api.guard.ai = AiSettings(usage_max_rows=2)
        await api.record(*(event(api.tenant_id, task=f"t{n}") for n in range(3)))
        report = await api.usage()
        assert [row["task"] for row in report["rows"]] == ["t0", "t1"]
        assert report["truncated"] is True
        assert report["totals"]["requests"] == 3

    async def test_the_longest_window_is_accepted(self, api: Api) -> None:
        last = date(2026, 3, 1) + timedelta(days=AiSettings().usage_max_days - 1)
        report = await api.usage(since="2026-03-01", until=last.isoformat())
        assert report["until"] == last.isoformat()

    @pytest.mark.parametrize(
        "params",
        [
            {"since": "2026-02-02", "until": "2026-02-01"},
            {"since": "2020-01-01", "until": "2026-01-01"},
            {"since": "2026-02-30"},
            {"since": "yesterday"},
            {"until": "1700000000"},
            {"since": "2026-1-1"},
            {"until": "2026-01-01T00:00:00"},
            {"since": ""},
        ],
        ids=[
            "since-after-until",
            "window-too-long",
            "no-such-day",
            "word",
            "timestamp",
            "unpadded",
            "datetime",
            "empty",
        ],
    )
    async def test_bad_windows_are_422(self, api: Api, params: dict[str, str]) -> None:
        response = await api.client.get(USAGE, params=params, headers=api.headers)
        assert_error(response, 422, "validation_failed")

    async def test_the_usage_scope_is_required(self, api: Api) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["ai:budgets"])
        response = await api.client.get(USAGE, headers=auth(issued.secret))
        assert_error(response, 403, "forbidden")

    async def test_no_key_is_401(self, api: Api) -> None:
        assert_error(await api.client.get(USAGE), 401, "unauthorized")


class TestSetBudget:
    async def test_sets_a_tenant_budget(self, api: Api) -> None:
        response = await api.put_budget(period="day", limit_usd="12.5")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["period"] == "day"
        assert body["key_id"] is None
        assert body["limit_usd"] == "12.500000000"
        assert body["spent_usd"] == "0.000000000"
        assert body["remaining_usd"] == "12.500000000"
        assert body["period_start"] == UTC_TODAY.isoformat()
        assert body["resets_at"].startswith((UTC_TODAY + timedelta(days=1)).isoformat())

    async def test_a_number_is_accepted_too(self, api: Api) -> None:
        response = await api.put_budget(period="month", limit_usd=0.25)
        assert response.status_code == 200, response.text
        assert response.json()["limit_usd"] == "0.250000000"

    async def test_setting_again_changes_the_limit(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="1")
        response = await api.put_budget(period="day", limit_usd="2.000000001")
        assert response.json()["limit_usd"] == "2.000000001"
        assert await count_budgets(api.platform) == 1

    async def test_a_budget_applies_at_once_and_a_raise_too(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="0.000001")
        with pytest.raises(BudgetExceeded):
            await api.guard.reserve(tenant_id=api.tenant_id, key_id=None, max_cost_nanos=2_000)
        await api.put_budget(period="day", limit_usd="0.000002")
        await api.guard.reserve(tenant_id=api.tenant_id, key_id=None, max_cost_nanos=2_000)

    async def test_sets_a_budget_for_one_of_the_tenants_keys(self, api: Api) -> None:
        response = await api.put_budget(period="month", key_id=api.key_id, limit_usd="3")
        assert response.status_code == 200, response.text
        assert response.json()["key_id"] == api.key_id
        with pytest.raises(BudgetExceeded):
            await api.guard.reserve(
                tenant_id=api.tenant_id, key_id=api.key_id, max_cost_nanos=3_000_000_001
            )

    @pytest.mark.parametrize("which", ["other-tenants-key", "unknown-key"])
    async def test_a_key_not_of_the_tenant_is_404_and_nothing_written(
        self, api: Api, which: str
    ) -> None:
        key_id = api.other_key_id if which == "other-tenants-key" else "0" * 32
        response = await api.put_budget(period="day", key_id=key_id, limit_usd="1")
        assert_error(response, 404, "not_found")
        assert await count_budgets(api.platform) == 0

    @pytest.mark.parametrize(
        "body",
        [
            {"period": "day", "limit_usd": "-1"},
            {"period": "day", "limit_usd": -0.5},
            {"period": "day", "limit_usd": "0.0000000001"},
            {"period": "day", "limit_usd": "NaN"},
            {"period": "day", "limit_usd": "Infinity"},
            {"period": "day", "limit_usd": "ten"},
            {"period": "day", "limit_usd": "1e30"},
            {"period": "day"},
            {"period": "week", "limit_usd": "1"},
            {"period": "day", "limit_usd": "1", "key_id": "not-a-key"},
            {"period": "day", "limit_usd": "1", "key_id": "A" * 32},
            {"period": "day", "limit_usd": "1", "tenant_id": "f" * 32},
        ],
        ids=[
            "negative",
            "negative-number",
            "ten-decimals",
            "nan",
            "infinity",
            "word",
            "huge",
            "no-limit",
            "unknown-period",
            "malformed-key",
            "uppercase-key",
            "tenant-field",
        ],
    )
    async def test_bad_input_is_422_and_nothing_written(
        self, api: Api, body: dict[str, Any]
    ) -> None:
        response = await api.client.put(BUDGETS, json=body, headers=api.headers)
        assert_error(response, 422, "validation_failed")
        assert await count_budgets(api.platform) == 0

    async def test_zero_is_a_valid_limit_that_refuses_everything(self, api: Api) -> None:
        response = await api.put_budget(period="day", limit_usd="0")
        assert response.status_code == 200, response.text
        with pytest.raises(BudgetExceeded):
            await api.guard.reserve(tenant_id=api.tenant_id, key_id=None, max_cost_nanos=1)

    async def test_the_budgets_scope_is_required(self, api: Api) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["ai:usage"])
        response = await api.put_budget(auth(issued.secret), period="day", limit_usd="1")
        assert_error(response, 403, "forbidden")
        assert await count_budgets(api.platform) == 0


class TestListBudgets:
    async def test_lists_budgets_with_the_current_spend(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="1")
        await api.put_budget(period="month", key_id=api.key_id, limit_usd="5")
        reservation = await api.guard.reserve(
            tenant_id=api.tenant_id, key_id=api.key_id, max_cost_nanos=400_000_000
        )
        await api.guard.settle(reservation, 250_000_000)
        budgets = {(b["period"], b["key_id"]): b for b in await api.budgets()}
        assert set(budgets) == {("day", None), ("month", api.key_id)}
        assert budgets["day", None]["spent_usd"] == "0.250000000"
        assert budgets["day", None]["remaining_usd"] == "0.750000000"
        assert budgets["month", api.key_id]["spent_usd"] == "0.250000000"
        assert budgets["month", api.key_id]["period_start"] == UTC_TODAY.replace(day=1).isoformat()

    async def test_pages_are_bounded_and_cursored(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="1")
        await api.put_budget(period="month", limit_usd="1")
        first = await api.client.get(BUDGETS, params={"limit": 1}, headers=api.headers)
        assert len(first.json()["items"]) == 1
        cursor = first.json()["next_cursor"]
        second = await api.client.get(
            BUDGETS, params={"limit": 1, "cursor": cursor}, headers=api.headers
        )
        assert len(second.json()["items"]) == 1
        assert second.json()["next_cursor"] is None
        assert first.json()["items"][0]["period"] != second.json()["items"][0]["period"]

    async def test_another_tenants_budgets_are_never_shown(self, api: Api) -> None:
        await api.put_budget(api.other, period="day", limit_usd="1")
        assert await api.budgets() == []
        assert len(await api.budgets(api.other)) == 1


class TestDeleteBudget:
    async def test_deletes_a_budget(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="0")
        response = await api.client.delete(BUDGETS + "/day", headers=api.headers)
        assert response.status_code == 204, response.text
        assert await api.budgets() == []
        reservation = await api.guard.reserve(
            tenant_id=api.tenant_id, key_id=None, max_cost_nanos=1
        )
        assert reservation.empty

    async def test_deletes_a_keys_budget_only(self, api: Api) -> None:
        await api.put_budget(period="day", limit_usd="1")
        await api.put_budget(period="day", key_id=api.key_id, limit_usd="1")
        response = await api.client.delete(
            BUDGETS + "/day", params={"key_id": api.key_id}, headers=api.headers
        )
        assert response.status_code == 204, response.text
        assert [b["key_id"] for b in await api.budgets()] == [None]

    async def test_a_missing_budget_is_404(self, api: Api) -> None:
        response = await api.client.delete(BUDGETS + "/month", headers=api.headers)
        assert_error(response, 404, "not_found")

    async def test_another_tenants_budget_is_404_and_kept(self, api: Api) -> None:
        await api.put_budget(api.other, period="day", limit_usd="1")
        response = await api.client.delete(BUDGETS + "/day", headers=api.headers)
        assert_error(response, 404, "not_found")
        assert len(await api.budgets(api.other)) == 1

    @pytest.mark.parametrize(
        ("path", "params"),
        [("/week", {}), ("/day", {"key_id": "xyz"})],
        ids=["unknown-period", "malformed-key"],
    )
    async def test_bad_input_is_422(self, api: Api, path: str, params: dict[str, str]) -> None:
        await api.put_budget(period="day", limit_usd="1")
        response = await api.client.delete(BUDGETS + path, params=params, headers=api.headers)
        assert_error(response, 422, "validation_failed")
        assert await count_budgets(api.platform) == 1
