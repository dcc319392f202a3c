"""GET /api/metrics/series: sums per step over every replica, bounded, tenant-scoped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tests.helpers import auth, ensure_tenant, issue_key, running
from tests.platform_dashboard.rollup_apps import (
    ROOMY_LIMITS,
    WORK_ROUTE,
    recorder,
    traffic_app,
)
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS, bucket_index
from xynergy.platform.rollups.models import REQUEST_ROLLUPS
from xynergy.platform.runtime import Platform

SERIES = "/api/metrics/series"
# A fixed hour, so rows written at known minutes land in known buckets.
HOUR = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR_MINUTE = int(HOUR.timestamp() // 60)


async def operator_headers(platform: Platform) -> dict[str, str]:
    _, key = await issue_key(platform, tenant="platform", scopes=["metrics:read"])
    return auth(key.secret)


def window(start: datetime, end: datetime, **params: Any) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat(), **params}


def request_row(minute: int, replica: str, requests: int, latency_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {name: 0 for name in BUCKET_COLUMNS}
    row[BUCKET_COLUMNS[bucket_index(latency_s)]] = requests
    row.update(
        minute=minute,
        replica_id=replica,
        service="svc",
        method="GET",
        route="/x",
        requests=requests,
        errors_4xx=0,
        errors_5xx=1,
        rate_limited=0,
        latency_sum_us=int(requests * latency_s * 1e6),
    )
    return row


async def values(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[Any]:
    response = await client.get(SERIES, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [point["value"] for point in response.json()["points"]]


class TestSums:
    async def test_buckets_sum_every_replica_per_step_in_sql(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url))
        async with running(app) as client:
            platform: Platform = app.state.platform
            rows = [
                request_row(HOUR_MINUTE + 1, "a", 10, 0.002),
                request_row(HOUR_MINUTE + 4, "b", 5, 0.002),
                request_row(HOUR_MINUTE + 4, "a", 1, 0.400),
                request_row(HOUR_MINUTE + 7, "b", 4, 0.400),
            ]
            async with unit_of_work(platform.sessionmaker) as session:
                await session.execute(insert(REQUEST_ROLLUPS), rows)
            headers = await operator_headers(platform)
            span = window(HOUR, HOUR + timedelta(minutes=15), step=300, route="/x")
            requests = await values(client, headers, metric="requests", **span)
            errors = await values(client, headers, metric="errors_5xx", **span)
            p99 = await values(client, headers, metric="latency_p99", **span)
            p50 = await values(client, headers, metric="latency_p50", **span)
            response = await client.get(
                SERIES, params={"metric": "requests", **span}, headers=headers
            )
        assert requests == [16, 4, 0]
        assert errors == [3, 1, 0]
        # From merged buckets: 1 slow request in 16 is the p99 of the first step,
        # not a mean of each replica's p99 (2 ms and 400 ms).
        assert p99[0] is not None
        assert 256 <= p99[0] < 512
        assert p50[0] is not None
        assert p50[0] < 4
        assert p99[2] is None
        body = response.json()
        assert body["from"].startswith("2026-11-30T12:00:00")
        assert body["step"] == 300
        assert body["unit"] == "requests"

    async def test_two_app_instances_on_postgres_are_summed(
        self, make_settings: Callable[..., Settings], pg_database_url: str
    ) -> None:
        settings = make_settings(database_url=pg_database_url, rate_limits=ROOMY_LIMITS)
        first, second = traffic_app(settings), traffic_app(settings)
        async with running(first) as client_a, running(second) as client_b:
            for _ in range(7):
                assert (await client_a.get("/work/1")).status_code == 200
            for _ in range(5):
                assert (await client_b.get("/work/1")).status_code == 200
            await recorder(first.state.platform).flush()
            await recorder(second.state.platform).flush()
            headers = await operator_headers(first.state.platform)
            now = datetime.now(UTC)
            counts = await values(
                client_b,
                headers,
                metric="requests",
                route=WORK_ROUTE,
                service="traffic",
                **window(now - timedelta(minutes=10), now + timedelta(minutes=1), step=660),
            )
        # The window's edges round out to whole minutes: one or two steps.
        assert sum(counts) == 12


class TestValidation:
    @pytest.mark.parametrize(
        ("params", "fragment"),
        [
            ({"metric": "requests", **window(HOUR - timedelta(days=40), HOUR)}, "longer than"),
            (
                {"metric": "requests", "step": 60, **window(HOUR - timedelta(days=2), HOUR)},
                "at least 120 seconds",
            ),
            ({"metric": "requests", "step": 90, **window(HOUR - timedelta(hours=1), HOUR)}, "minutes"),
            ({"metric": "bogus"}, "Unknown metric"),
            ({"metric": "requests", **window(HOUR, HOUR - timedelta(hours=1))}, "before"),
            ({"metric": "requests", "model": "m"}, "does not apply"),
        ],
        ids=["range_too_long", "too_many_points", "step_not_minutes", "unknown_metric",
             "from_after_to", "foreign_filter"],
    )  # fmt: skip
    async def test_bad_windows_answer_422_with_a_clear_detail(
        self, make_settings: Callable[..., Settings], params: dict[str, Any], fragment: str
    ) -> None:
        app = traffic_app(make_settings())
        async with running(app) as client:
            headers = await operator_headers(app.state.platform)
            response = await client.get(SERIES, params=params, headers=headers)
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) == {"error", "detail", "request_id"}
        assert fragment in body["detail"]

    async def test_a_range_within_the_bounds_is_answered(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = traffic_app(make_settings())
        async with running(app) as client:
            headers = await operator_headers(app.state.platform)
            params = {"metric": "requests", **window(HOUR - timedelta(days=2), HOUR)}
            response = await client.get(SERIES, params=params, headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert body["step"] == 120
        assert len(body["points"]) == 1440


class TestTenantIsolation:
    async def test_a_tenant_key_sees_only_its_own_tenant_scoped_series(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url))
        async with running(app) as client:
            platform: Platform = app.state.platform
            acme, acme_key = await issue_key(platform, tenant="acme", scopes=["metrics:read"])
            globex = await ensure_tenant(platform, "globex")
            counting = recorder(platform)
            for tenant, tokens in ((acme, 100), (globex, 7000), (globex, 5)):
                counting.ai(
                    tenant,
                    "model-a",
                    input_tokens=tokens,
                    output_tokens=1,
                    cost_nanos=tokens * 1000,
                    cache_hit=False,
                    error=False,
                )
            await counting.flush()
            now = datetime.now(UTC)
            span = window(now - timedelta(minutes=5), now + timedelta(minutes=1), step=360)
            tenant_headers = auth(acme_key.secret)
            own = await client.get(
                SERIES, params={"metric": "ai_tokens", **span}, headers=tenant_headers
            )
            named_own = await client.get(
                SERIES,
                params={"metric": "ai_tokens", "tenant": acme, **span},
                headers=tenant_headers,
            )
            other = await client.get(
                SERIES,
                params={"metric": "ai_tokens", "tenant": globex, **span},
                headers=tenant_headers,
            )
            traffic = await client.get(
                SERIES, params={"metric": "requests", **span}, headers=tenant_headers
            )
            operator = await operator_headers(platform)
            everyone = await values(client, operator, metric="ai_tokens", **span)
            one = await values(client, operator, metric="ai_tokens", tenant=globex, **span)
            cost = await values(client, operator, metric="ai_cost_usd", tenant=acme, **span)
        assert own.status_code == 200
        assert sum(p["value"] for p in own.json()["points"]) == 101
        assert own.json()["scope"] == "tenant"
        assert named_own.status_code == 200
        assert other.status_code == 404
        assert traffic.status_code == 403
        assert sum(everyone) == 101 + 7001 + 6
        assert sum(one) == 7001 + 6
        assert sum(cost) == pytest.approx(100_000 / 1e9)
