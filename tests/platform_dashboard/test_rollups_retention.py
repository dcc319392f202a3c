"""Rollup retention: old rows deleted in bounded batches from the maintenance hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, func, insert, select

from tests.helpers import ensure_tenant
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.rollups import retention
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS
from xynergy.platform.rollups.models import (
    CACHE_ROLLUPS,
    RATE_LIMIT_ROLLUPS,
    REQUEST_ROLLUPS,
    ROLLUP_TABLES,
)
from xynergy.platform.runtime import Platform

OLD, FRESH = 25, 5


def _rows(table: Table, minutes: list[int], tenant_id: str) -> list[dict[str, Any]]:
    common: dict[str, Any] = {"replica_id": "r"}
    if table is REQUEST_ROLLUPS:
        common |= {name: 0 for name in BUCKET_COLUMNS}
        common |= dict(service="s", method="GET", route="/x", requests=1, errors_4xx=0,
                       errors_5xx=0, rate_limited=0, latency_sum_us=0)  # fmt: skip
    elif table is CACHE_ROLLUPS:
        common |= {"namespace": "n", "hits": 1, "misses": 0}
    elif table is RATE_LIMIT_ROLLUPS:
        common |= dict(service="s", route="/x", rate_class="reads", tenant_id=tenant_id,
                       rejections=1)  # fmt: skip
    else:
        common |= dict(tenant_id=tenant_id, model="m", requests=1, errors=0, cache_hits=0,
                       input_tokens=1, output_tokens=1, cost_nanos=1)  # fmt: skip
    return [{**common, "minute": minute} for minute in minutes]


async def _fill(platform: Platform, cutoff: int) -> None:
    tenant_id = await ensure_tenant(platform, "acme")
    minutes = [cutoff - 1000 + index for index in range(OLD)] + [cutoff + i for i in range(FRESH)]
    async with unit_of_work(platform.sessionmaker) as session:
        for table in ROLLUP_TABLES:
            await session.execute(insert(table), _rows(table, minutes, tenant_id))


async def _counts(platform: Platform) -> list[int]:
    async with unit_of_work(platform.sessionmaker) as session:
        return [
            int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in ROLLUP_TABLES
        ]


class TestRetention:
    async def test_one_purge_deletes_one_bounded_batch_per_table_oldest_first(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        platform = await Platform.open(settings)
        try:
            cutoff = retention.retention_cutoff(settings)
            await _fill(platform, cutoff)
            deleted = await retention.purge_expired(platform.sessionmaker, cutoff=cutoff, batch=10)
            counts = await _counts(platform)
        finally:
            await platform.close()
        assert deleted == [10] * len(ROLLUP_TABLES)
        assert counts == [OLD + FRESH - 10] * len(ROLLUP_TABLES)

    async def test_the_maintenance_job_deletes_every_expired_row_and_keeps_the_rest(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url, rollup_retention_batch=10)
        platform = await Platform.open(settings)
        try:
            await _fill(platform, retention.retention_cutoff(settings))
            await platform.maintenance_jobs[retention.JOB_NAME]()
            counts = await _counts(platform)
        finally:
            await platform.close()
        assert counts == [FRESH] * len(ROLLUP_TABLES)

    async def test_a_tick_stops_after_its_maximum_of_batches(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(rollup_retention_batch=10, rollup_retention_max_batches=2)
        platform = await Platform.open(settings)
        try:
            await _fill(platform, retention.retention_cutoff(settings))
            await platform.maintenance_jobs[retention.JOB_NAME]()
            counts = await _counts(platform)
        finally:
            await platform.close()
        assert counts == [OLD + FRESH - 20] * len(ROLLUP_TABLES)
