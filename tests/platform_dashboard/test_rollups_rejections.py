"""Rate-limit rejections as their own rollup: counted where the limiter refuses, per
service, route template, limit and tenant, and read back as a series."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from limits import parse
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from tests.platform_dashboard.rollup_apps import ROOMY_LIMITS, WORK_ROUTE, recorder, request_sums
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups.models import RATE_LIMIT_ROLLUPS
from xynergy.platform.routing import api_router, public
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.series.endpoints import router as series_router

SLUG = "limited"
BUDGET_ROUTE = "/budget"
SERIES = "/api/metrics/series"
# Public routes: 5 a minute per address; reads: 2 a minute per key.
LIMITS = {**ROOMY_LIMITS, "public": "5/minute", "reads": "2/minute"}


def limited_app(settings: Settings) -> FastAPI:
    """A public route, a public route that spends a budget of its own, and the series."""
    router = api_router()

    @router.get(WORK_ROUTE)
    @public
    async def work(ms: int) -> dict[str, int]:
        return {"ms": ms}

    @router.get(BUDGET_ROUTE)
    @public
    async def budget(request: Request) -> dict[str, bool]:
        # A service's own limit, consumed inside the endpoint (as the AI gateway's
        # tokens per minute): recorded under this route without being told it.
        limiter = request.app.state.platform.rate_limiter
        await limiter.consume(parse("1/minute"), "test_budget", "budget", service=SLUG)
        return {"ok": True}

    return create_service_app(
        slug=SLUG, title=SLUG, settings=settings, routers=[router, series_router]
    )


async def rejection_rows(platform: Platform) -> dict[tuple[str, str, str | None], int]:
    table = RATE_LIMIT_ROLLUPS
    query = (
        select(table.c.route, table.c.rate_class, table.c.tenant_id, func.sum(table.c.rejections))
        .where(table.c.service == SLUG)
        .group_by(table.c.route, table.c.rate_class, table.c.tenant_id)
        .limit(20)
    )
    async with unit_of_work(platform.sessionmaker) as session:
        rows = (await session.execute(query)).all()
    return {(row[0], row[1], row[2]): int(row[3]) for row in rows}


class TestRejectionsRecorded:
    async def test_each_refusal_is_counted_by_route_limit_and_tenant(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = limited_app(make_settings(database_url=database_url, rate_limits=LIMITS))
        async with running(app) as client:
            platform: Platform = app.state.platform
            acme, key = await issue_key(platform, tenant="acme", scopes=["metrics:read"])
            # Two of the address's five public requests, then five more: two refused.
            spent = [(await client.get(BUDGET_ROUTE)).status_code for _ in range(2)]
            work = [(await client.get("/work/1")).status_code for _ in range(5)]
            params = {"metric": "ai_tokens"}
            reads = [
                (await client.get(SERIES, params=params, headers=auth(key.secret))).status_code
                for _ in range(3)
            ]
            assert await rejection_rows(platform) == {}, "nothing written on the request path"
            await recorder(platform).flush()
            rows = await rejection_rows(platform)
            answered_429 = await request_sums(platform, service=SLUG)
        assert work == [200, 200, 200, 429, 429]
        # The budget route's second call: the route class admits it, its own budget not.
        assert spent == [200, 429]
        assert reads == [200, 200, 429]
        assert rows == {
            (WORK_ROUTE, "public", None): 2,
            (BUDGET_ROUTE, "test_budget", None): 1,
            (SERIES, "reads", acme): 1,
        }
        assert answered_429["rate_limited"] == 4

    async def test_the_series_sums_rejections_and_a_tenant_sees_only_its_own(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = limited_app(make_settings(database_url=database_url, rate_limits=ROOMY_LIMITS))
        async with running(app) as client:
            platform: Platform = app.state.platform
            acme, key = await issue_key(platform, tenant="acme", scopes=["metrics:read"])
            globex, _ = await issue_key(platform, tenant="globex", scopes=["metrics:read"])
            _, operator = await issue_key(platform, tenant="platform", scopes=["metrics:read"])
            counting = recorder(platform)
            for tenant, times in ((acme, 2), (globex, 5), (None, 3)):
                for _ in range(times):
                    counting.rate_limited(SLUG, "/api/x", "writes", tenant)
            await counting.flush()
            now = datetime.now(UTC)
            span: dict[str, Any] = {
                "metric": "rate_limit_rejections",
                "from": (now - timedelta(minutes=5)).isoformat(),
                "to": (now + timedelta(minutes=1)).isoformat(),
                "step": 360,
            }

            async def total(headers: dict[str, str], **extra: str) -> Any:
                response = await client.get(SERIES, params={**span, **extra}, headers=headers)
                assert response.status_code == 200, response.text
                return sum(point["value"] for point in response.json()["points"])

            everyone = await total(auth(operator.secret))
            writes = await total(auth(operator.secret), rate_class="writes", service=SLUG)
            one = await total(auth(operator.secret), tenant=globex)
            own = await total(auth(key.secret))
            other = await client.get(
                SERIES, params={**span, "tenant": globex}, headers=auth(key.secret)
            )
        assert everyone == writes == 10
        assert one == 5
        assert own == 2
        assert other.status_code == 404
