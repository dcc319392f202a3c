"""Per-minute rollups: counted on the request path, written behind it, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
from sqlalchemy import select

from tests.ai_routing.gateway import gateway
from tests.helpers import metric_value, running, scrape
from tests.platform_dashboard.rollup_apps import (
    ROOMY_LIMITS,
    WORK_ROUTE,
    recorder,
    replicas,
    request_sums,
    traffic_app,
)
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.rollups.buckets import percentile_ms
from xynergy.platform.rollups.models import AI_ROLLUPS, CACHE_ROLLUPS
from xynergy.platform.rollups.recorder import (
    ROWS_DROPPED_METRIC,
    SAMPLES_DROPPED_METRIC,
    RollupRecorder,
)
from xynergy.platform.runtime import Platform

FAST_MS, SLOW_MS = 5, 300


class TestRequestRollups:
    async def test_requests_become_rows_with_counts_and_percentiles_after_a_flush(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = traffic_app(make_settings(database_url=database_url, rate_limits=ROOMY_LIMITS))
        async with running(app) as client:
            platform: Platform = app.state.platform
            for ms in [FAST_MS] * 18 + [SLOW_MS] * 2:
                assert (await client.get(f"/work/{ms}")).status_code == 200
            for _ in range(3):
                assert (await client.get("/boom")).status_code == 503
            for item in range(2):
                assert (await client.get(f"/nothing/{item}")).status_code == 404
            before = await request_sums(platform)
            written = await recorder(platform).flush()
            work = await request_sums(platform, service="traffic", route=WORK_ROUTE)
            boom = await request_sums(platform, route="/boom")
            missing = await request_sums(platform, route="/nothing/{item}")
        assert before["rows"] == 0, "nothing is written on the request path"
        assert written >= 3
        assert work["requests"] == 20
        assert sum(work["buckets"]) == 20
        assert (work["errors_4xx"], work["errors_5xx"]) == (0, 0)
        assert (boom["requests"], boom["errors_5xx"]) == (3, 3)
        assert (missing["requests"], missing["errors_4xx"], missing["errors_5xx"]) == (2, 2, 0)
        p50 = percentile_ms(work["buckets"], 0.50)
        p95 = percentile_ms(work["buckets"], 0.95)
        assert p50 is not None
        assert p95 is not None
        assert FAST_MS / 1.5 <= p50 < 64, p50
        # Within one bucket (a factor of 1.41) of the slow requests' time.
        assert SLOW_MS / 1.5 <= p95 < SLOW_MS * 3, p95

    async def test_each_replica_writes_its_own_rows_to_one_postgres_database(
        self, make_settings: Callable[..., Settings], pg_database_url: str
    ) -> None:
        settings = make_settings(database_url=pg_database_url, rate_limits=ROOMY_LIMITS)
        first, second = traffic_app(settings), traffic_app(settings)
        async with running(first) as client_a, running(second) as client_b:
            for _ in range(18):
                assert (await client_a.get(f"/work/{FAST_MS}")).status_code == 200
            for _ in range(2):
                assert (await client_b.get(f"/work/{SLOW_MS}")).status_code == 200
            await recorder(first.state.platform).flush()
            await recorder(second.state.platform).flush()
            work = await request_sums(first.state.platform, route=WORK_ROUTE)
            names = await replicas(first.state.platform)
        assert names == {
            recorder(first.state.platform).replica_id,
            recorder(second.state.platform).replica_id,
        }
        assert work["requests"] == 20
        # Merged buckets: the p95 is a slow request, though one replica saw only fast ones
        # (the mean of the replicas' p95s would be about half of it).
        p95 = percentile_ms(work["buckets"], 0.95)
        assert p95 is not None
        assert p95 >= SLOW_MS / 1.5

    async def test_shutdown_writes_the_current_minute(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = traffic_app(make_settings(rate_limits=ROOMY_LIMITS))
        async with running(app) as client:
            platform: Platform = app.state.platform
            assert (await client.get("/work/0")).status_code == 200
        reopened = await Platform.open(platform.settings)
        try:
            work = await request_sums(reopened, route=WORK_ROUTE)
        finally:
            await reopened.close()
        assert work["requests"] == 1


class TestWriterNeverBlocks:
    async def test_a_full_queue_drops_and_counts_while_requests_stay_fast(
        self, make_settings: Callable[..., Settings], pg_database_url: str
    ) -> None:
        settings = make_settings(
            database_url=pg_database_url, rate_limits=ROOMY_LIMITS, rollup_queue_max_rows=2
        )
        app = traffic_app(settings)
        dsn = pg_database_url.replace("postgresql+asyncpg://", "postgresql://")
        holder = await asyncpg.connect(dsn)
        async with running(app) as client:
            platform: Platform = app.state.platform
            for index in range(6):
                assert (await client.get(f"/series-{index}")).status_code == 200
            # The writer's INSERTs wait behind this lock for as long as the test holds it.
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("LOCK TABLE platform_request_rollups IN ACCESS EXCLUSIVE MODE")
            flushing = asyncio.create_task(recorder(platform).flush())
            await asyncio.sleep(0.2)
            slowest = 0.0
            for index in range(60):
                started = time.perf_counter()
                assert (await client.get(f"/series-{index % 6}")).status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
            assert not flushing.done(), "the writer is stuck behind the lock"
            recorder(platform).queue_rows(include_current=True)
            dropped = metric_value(
                scrape(platform), ROWS_DROPPED_METRIC + "_total", reason="queue_full"
            )
            await transaction.rollback()
            written = await flushing
        await holder.close()
        assert slowest < 0.5, f"a request took {slowest:.3f}s while the writer was blocked"
        assert written == 2, "the queue held its bound"
        assert dropped >= 4 + 4, "the first 4 of 6 series and the next minute's overflow"


class TestBoundedSeries:
    async def test_series_past_the_bound_are_dropped_and_counted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(rollup_max_series_per_minute=2)
        platform = await Platform.open(settings)
        metrics = PlatformMetrics()
        minute_start = 1_800_000_000.0 - (1_800_000_000.0 % 60)
        counting = RollupRecorder(
            settings, platform.sessionmaker, metrics, clock=lambda: minute_start + 1
        )
        try:
            for route in ("/a", "/b", "/c", "/d", "/a", "/c"):
                counting.request("svc", "GET", route, 200, 0.001)
            written = await counting.flush()
        finally:
            await counting.stop()
            await platform.close()
        assert written == 2
        text = metrics.render().decode()
        assert metric_value(text, SAMPLES_DROPPED_METRIC + "_total", reason="series_limit") == 3

    async def test_a_periodic_flush_writes_only_ended_minutes(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings()
        platform = await Platform.open(settings)
        now = [1_800_000_000.0 - (1_800_000_000.0 % 60) + 30]
        counting = RollupRecorder(
            settings, platform.sessionmaker, PlatformMetrics(), clock=lambda: now[0]
        )
        try:
            counting.request("svc", "GET", "/a", 200, 0.001)
            assert await counting.flush(include_current=False) == 0
            now[0] += 60
            counting.request("svc", "GET", "/a", 200, 0.001)
            assert await counting.flush(include_current=False) == 1
        finally:
            await counting.stop()
            await platform.close()


class TestAiAndCacheRollups:
    async def test_ai_calls_count_tokens_cost_and_cache_hits_per_tenant_and_model(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            first = (await gw.generate(task="keywords", prompt="ideas for: tea shop")).json()
            second = (await gw.generate(task="keywords", prompt="ideas for: tea shop")).json()
            await recorder(gw.platform).flush()
            async with unit_of_work(gw.platform.sessionmaker) as session:
                ai_rows = (await session.execute(select(AI_ROLLUPS).limit(10))).mappings().all()
                cache_rows = (
                    (await session.execute(select(CACHE_ROLLUPS).limit(50))).mappings().all()
                )
        assert second["cached"] is True
        assert len(ai_rows) == 1
        row = ai_rows[0]
        assert (row["tenant_id"], row["model"]) == (gw.tenant_id, first["model"])
        assert (row["requests"], row["cache_hits"], row["errors"]) == (2, 1, 0)
        assert row["output_tokens"] == first["usage"]["output_tokens"]
        assert row["input_tokens"] == first["usage"]["input_tokens"]
        assert sum(r["hits"] for r in cache_rows) >= 1
        assert sum(r["misses"] for r in cache_rows) >= 1
