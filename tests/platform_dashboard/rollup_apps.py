"""A small service app with known latencies and statuses, and rollup readers for tests."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Table, func, select

from xynergy.platform.app import create_service_app
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound, UpstreamUnavailable
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS
from xynergy.platform.rollups.models import REQUEST_ROLLUPS
from xynergy.platform.rollups.recorder import RollupRecorder
from xynergy.platform.routing import api_router, public
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.series.endpoints import router as series_router

SLUG = "traffic"
WORK_ROUTE = "/work/{ms}"
# Room for every request a test makes from one address.
ROOMY_LIMITS = {**DEFAULT_RATE_LIMITS, "public": "100000/hour"}


def traffic_app(settings: Settings) -> FastAPI:
    """Public routes that sleep, fail with 503 or answer 404; plus the series endpoint."""
    router = api_router()

    @router.get(WORK_ROUTE)
    @public
    async def work(ms: int) -> dict[str, int]:
        await asyncio.sleep(ms / 1000)
        return {"slept_ms": ms}

    @router.get("/boom")
    @public
    async def boom() -> None:
        raise UpstreamUnavailable("down on purpose")

    @router.get("/nothing/{item}")
    @public
    async def nothing(item: int) -> None:
        raise NotFound("no such thing")

    for index in range(6):

        @router.get(f"/series-{index}")
        @public
        async def one_of_many() -> dict[str, bool]:
            return {"ok": True}

    return create_service_app(
        slug=SLUG, title=SLUG, settings=settings, routers=[router, series_router]
    )


def recorder(platform: Platform) -> RollupRecorder:
    assert platform.rollups is not None
    return platform.rollups


async def request_sums(platform: Platform, **where: str) -> dict[str, Any]:
    """Sums of the request rollups (every replica) matching ``where``, with the buckets."""
    table: Table = REQUEST_ROLLUPS
    columns = ["requests", "errors_4xx", "errors_5xx", "rate_limited", *BUCKET_COLUMNS]
    query = select(
        func.count(), *(func.coalesce(func.sum(table.c[name]), 0) for name in columns)
    ).where(*(table.c[name] == value for name, value in where.items()))
    async with unit_of_work(platform.sessionmaker) as session:
        row = (await session.execute(query)).one()
    values = dict(zip(columns, (int(value) for value in row[1:]), strict=True))
    values["rows"] = int(row[0])
    values["buckets"] = [values.pop(name) for name in BUCKET_COLUMNS]
    return values


async def replicas(platform: Platform) -> set[str]:
    async with unit_of_work(platform.sessionmaker) as session:
        rows = await session.execute(select(REQUEST_ROLLUPS.c.replica_id).distinct().limit(10))
    return {row[0] for row in rows}
