"""The shared cache layer: scoping, singleflight, tags, TTLs, and L1 coherence over Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.helpers import metric_value, running, scrape
from xynergy.platform.app import create_service_app
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.runtime import Platform

PROPAGATION_BOUND_SECONDS = 1.0


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[PlatformCache]:
    cache = PlatformCache(settings, PlatformMetrics())
    await cache.open()
    try:
        yield cache
    finally:
        await cache.close()


class Counter:
    """A computation that counts its runs and returns a value it is told."""

    def __init__(self, value: Any = "v1", delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.runs = 0

    async def __call__(self) -> Any:
        self.runs += 1
        await asyncio.sleep(self.delay)
        return self.value


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    if request.param == "memory":
        return make_settings()
    return make_settings(
        redis_url=request.getfixturevalue("redis_url"),
        redis_key_prefix=request.getfixturevalue("redis_prefix"),
    )


class TestGetOrCompute:
    async def test_second_read_is_a_hit(self, cache_settings: Settings) -> None:
        async with opened(cache_settings) as cache:
            compute = Counter({"rows": [1, 2]})
            first = await cache.get_or_compute("lists", "t1", ["a"], compute)
            second = await cache.get_or_compute("lists", "t1", ["a"], compute)
        assert first == second == {"rows": [1, 2]}
        assert compute.runs == 1

    async def test_keys_are_tenant_scoped(self, cache_settings: Settings) -> None:
        async with opened(cache_settings) as cache:
            one = await cache.get_or_compute("lists", "t1", ["a"], Counter("tenant one"))
            two = await cache.get_or_compute("lists", "t2", ["a"], Counter("tenant two"))
        assert (one, two) == ("tenant one", "tenant two")

    async def test_a_schema_version_bump_orphans_old_entries(
        self, cache_settings: Settings
    ) -> None:
        async with opened(cache_settings) as cache:
            await cache.get_or_compute("lists", "t1", ["a"], Counter("old shape"))
        bumped = cache_settings.model_copy(update={"cache_schema_version": 2})
        async with opened(bumped) as cache:
            value = await cache.get_or_compute("lists", "t1", ["a"], Counter("new shape"))
        assert value == "new shape"

    async def test_100_concurrent_misses_compute_once(self, cache_settings: Settings) -> None:
        async with opened(cache_settings) as cache:
            compute = Counter("shared", delay=0.05)
            values = await asyncio.gather(
                *(cache.get_or_compute("trending", "t1", [7], compute) for _ in range(100))
            )
            assert cache.inflight == 0
        assert values == ["shared"] * 100
        assert compute.runs == 1

    async def test_a_failed_computation_reaches_every_waiter_and_caches_nothing(
        self, cache_settings: Settings
    ) -> None:
        async def failing() -> Any:
            await asyncio.sleep(0.02)
            raise RuntimeError("source down")

        async with opened(cache_settings) as cache:
            results = await asyncio.gather(
                *(cache.get_or_compute("lists", "t1", ["x"], failing) for _ in range(5)),
                return_exceptions=True,
            )
            assert cache.inflight == 0
            recovered = await cache.get_or_compute("lists", "t1", ["x"], Counter("back"))
        assert all(isinstance(r, RuntimeError) for r in results)
        assert recovered == "back"

    async def test_namespace_ttl_comes_from_settings(self, cache_settings: Settings) -> None:
        settings = cache_settings.model_copy(update={"cache_ttls": {"short": 1.0}})
        async with opened(settings) as cache:
            compute = Counter()
            await cache.get_or_compute("short", "t1", [], compute)
            await cache.get_or_compute("short", "t1", [], compute)
            await asyncio.sleep(1.2)
            await cache.get_or_compute("short", "t1", [], compute)
        assert compute.runs == 2

    async def test_settings_win_over_a_service_default_ttl(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with opened(make_settings(cache_ttls={"configured": 5.0})) as cache:
            cache.set_default_ttl("configured", 60.0)
            cache.set_default_ttl("service", 120.0)
            assert cache.ttl("configured") == 5.0
            assert cache.ttl("service") == 120.0
            assert cache.ttl("other") == cache_default(make_settings())


def cache_default(settings: Settings) -> float:
    return settings.cache_default_ttl_seconds


class TestInvalidation:
    async def test_invalidating_a_tag_drops_its_entries_only(
        self, cache_settings: Settings
    ) -> None:
        async with opened(cache_settings) as cache:
            lists = cache.tag("content", "t1", "lists")
            in_tag, other = Counter("listed"), Counter("elsewhere")
            await cache.get_or_compute("content", "t1", ["page1"], in_tag, tags=[lists])
            await cache.get_or_compute("content", "t1", ["detail"], other)
            await cache.invalidate(lists)
            in_tag.value = "listed again"
            assert await cache.get_or_compute("content", "t1", ["page1"], in_tag) == "listed again"
            assert await cache.get_or_compute("content", "t1", ["detail"], other) == "elsewhere"
        assert (in_tag.runs, other.runs) == (2, 1)

    async def test_a_value_computed_across_an_invalidation_is_not_stored(
        self, cache_settings: Settings
    ) -> None:
        async with opened(cache_settings) as cache:
            tag = cache.tag("content", "t1", "lists")
            runs = 0

            async def racing_write() -> str:
                nonlocal runs
                runs += 1
                if runs == 1:
                    # A write commits and invalidates while this read is computing.
                    await cache.invalidate(tag)
                    return "read before the write"
                return "read after the write"

            first = await cache.get_or_compute("content", "t1", ["p"], racing_write, tags=[tag])
            second = await cache.get_or_compute("content", "t1", ["p"], racing_write, tags=[tag])
        assert first == "read before the write"
        assert second == "read after the write"


@pytest.mark.redis
class TestTwoReplicas:
    async def test_a_write_on_one_replica_evicts_the_others_l1_within_a_second(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(
            redis_url=redis_url, redis_key_prefix=redis_prefix, cache_default_ttl_seconds=300
        )
        async with opened(settings) as writer, opened(settings) as reader:
            tag = writer.tag("trending", "t1")
            source = Counter(["kw-a", "kw-b"])
            assert await writer.get_or_compute("trending", "t1", [7], source, tags=[tag]) == [
                "kw-a",
                "kw-b",
            ]
            # The reader fills its L1 from Redis; a second read is an L1 hit.
            assert await reader.get_or_compute("trending", "t1", [7], source) == ["kw-a", "kw-b"]
            assert await reader.get_or_compute("trending", "t1", [7], source) == ["kw-a", "kw-b"]
            assert source.runs == 1

            source.value = ["kw-c"]
            await writer.invalidate(tag)
            started = time.monotonic()
            while (value := await reader.get_or_compute("trending", "t1", [7], source)) != ["kw-c"]:
                assert time.monotonic() - started < PROPAGATION_BOUND_SECONDS, value
                await asyncio.sleep(0.02)
        assert source.runs == 2

    async def test_an_unreachable_redis_degrades_to_computing(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(
            redis_url="redis://127.0.0.1:1/0",
            redis_socket_timeout_seconds=0.2,
            redis_reconnect_backoff_seconds=0.1,
        )
        async with opened(settings) as cache:
            compute = Counter("computed")
            values = [await cache.get_or_compute("lists", "t1", [], compute) for _ in range(3)]
        assert values == ["computed"] * 3


class TestInTheApp:
    async def test_warmers_run_at_start_and_counts_reach_metrics(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        warmed: list[str] = []

        async def register(platform: Platform) -> None:
            async def warm(cache: PlatformCache) -> None:
                await cache.get_or_compute("templates", "t1", ["default"], Counter("tpl"))
                warmed.append("templates")

            platform.cache.add_warmer(warm)

        app = create_service_app(
            slug="svc", title="svc", settings=make_settings(), on_startup=[register]
        )
        async with running(app):
            cache: PlatformCache = app.state.platform.cache
            await cache.get_or_compute("templates", "t1", ["default"], Counter("unused"))
            metrics = scrape(app.state.platform)
        assert warmed == ["templates"]
        requests = "xynergy_cache_requests_total"
        assert metric_value(metrics, requests, namespace="templates", result="miss") == 1
        assert metric_value(metrics, requests, namespace="templates", result="hit") == 1
        assert (
            metric_value(metrics, "xynergy_cache_compute_seconds_count", namespace="templates") == 1
        )
