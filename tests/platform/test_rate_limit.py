"""Rate limits: exact across replicas, keyed safely, bounded in memory."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from tests.helpers import auth, issue_key, metric_value, running, scrape
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.rate_limit import BoundedMemoryStorage, RateLimiter
from xynergy.platform.routing import api_router, public

Reader = Annotated[AuthContext, Depends(require_scopes("content:read"))]


def limits(**overrides: str) -> dict[str, str]:
    return {**DEFAULT_RATE_LIMITS, **overrides}


def limited_app(settings: Settings) -> FastAPI:
    router = api_router()

    @router.get("/items")
    async def list_items(_auth: Reader) -> dict[str, bool]:
        return {"ok": True}

    @router.post("/signup")
    @public
    async def signup() -> dict[str, bool]:
        return {"ok": True}

    return create_service_app(slug="svc", title="svc", settings=settings, routers=[router])


class TestAuthenticatedLimits:
    async def test_two_replicas_sharing_redis_admit_exactly_the_limit(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        settings = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
            rate_limits=limits(reads="7/minute"),
        )
        replica_a, replica_b = limited_app(settings), limited_app(settings)
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, key = await issue_key(replica_a.state.platform, scopes=["content:read"])
            requests = [
                (client_a if i % 2 else client_b).get("/items", headers=auth(key.secret))
                for i in range(30)
            ]
            responses = await asyncio.gather(*requests)
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) == 7
        assert statuses.count(429) == 23

    async def test_each_key_has_its_own_budget(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = limited_app(make_settings(rate_limits=limits(reads="2/minute")))
        async with running(app) as client:
            _, first = await issue_key(app.state.platform, scopes=["content:read"])
            _, second = await issue_key(app.state.platform, scopes=["content:read"])
            for _ in range(2):
                assert (await client.get("/items", headers=auth(first.secret))).status_code == 200
            assert (await client.get("/items", headers=auth(first.secret))).status_code == 429
            assert (await client.get("/items", headers=auth(second.secret))).status_code == 200

    async def test_rejection_carries_retry_after_and_ratelimit_headers(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = limited_app(make_settings(rate_limits=limits(reads="1/minute")))
        async with running(app) as client:
            _, key = await issue_key(app.state.platform, scopes=["content:read"])
            await client.get("/items", headers=auth(key.secret))
            response = await client.get("/items", headers=auth(key.secret))
            metrics = scrape(app.state.platform)
        assert response.status_code == 429
        body = response.json()
        assert body["error"] == "rate_limited"
        assert body["request_id"] == response.headers["x-request-id"]
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.headers["ratelimit-limit"] == "1"
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit-policy"] == "1;w=60"
        assert (
            metric_value(metrics, "xynergy_rate_limit_rejections_total", route_class="reads") == 1
        )

    async def test_the_whole_table_is_one_setting(
        self, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XYNERGY_RATE_LIMITS", '{"reads": "3/hour"}')
        with pytest.raises(ValueError, match="missing route classes"):
            Settings()
        table = dict(DEFAULT_RATE_LIMITS, reads="3/hour")
        import json

        monkeypatch.setenv("XYNERGY_RATE_LIMITS", json.dumps(table))
        assert Settings().rate_limits["reads"] == "3/hour"


class TestPublicLimits:
    async def test_spoofed_forwarded_for_from_untrusted_peer_does_not_change_the_key(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = limited_app(make_settings(rate_limits=limits(public="3/minute")))
        async with running(app, client_ip="203.0.113.7") as client:
            statuses = [
                (
                    await client.post("/signup", headers={"X-Forwarded-For": f"198.51.100.{i}"})
                ).status_code
                for i in range(6)
            ]
        assert statuses == [200, 200, 200, 429, 429, 429]

    async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(
            rate_limits=limits(public="1/minute"), trusted_proxies=["10.0.0.0/8"]
        )
        app = limited_app(settings)
        async with running(app, client_ip="10.1.2.3") as proxy:
            first = await proxy.post("/signup", headers={"X-Forwarded-For": "198.51.100.1"})
            other_client = await proxy.post("/signup", headers={"X-Forwarded-For": "198.51.100.2"})
            # A client-chosen left part cannot pick a fresh bucket: the right-most
            # untrusted hop (what our proxy saw) is the key.
            spoofed = await proxy.post(
                "/signup", headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.1"}
            )
            via_two_proxies = await proxy.post(
                "/signup", headers={"X-Forwarded-For": "198.51.100.2, 10.9.9.9"}
            )
        assert [first.status_code, other_client.status_code] == [200, 200]
        assert spoofed.status_code == 429
        assert via_two_proxies.status_code == 429


class TestInMemoryBound:
    async def test_100k_distinct_clients_keep_state_within_the_bound(self) -> None:
        bound = 1000
        settings = Settings(
            environment="test", rate_limit_memory_max_keys=bound, rate_limits=limits()
        )
        limiter = RateLimiter(settings, None, PlatformMetrics())
        storage = limiter.storage
        assert isinstance(storage, BoundedMemoryStorage)
        base = int(ipaddress.ip_address("100.64.0.0"))
        for offset in range(100_000):
            await limiter.hit(
                "public", "ip:" + str(ipaddress.ip_address(base + offset)), service="t"
            )
        assert storage.tracked_keys <= bound
        assert len(storage.storage) <= bound
        assert len(storage.expirations) <= bound
        assert len(storage.locks) <= bound

    async def test_a_recent_client_over_its_limit_stays_limited(self) -> None:
        settings = Settings(
            environment="test",
            rate_limit_memory_max_keys=100,
            rate_limits=limits(public="2/minute"),
        )
        limiter = RateLimiter(settings, None, PlatformMetrics())
        await limiter.hit("public", "ip:abuser", service="t")
        await limiter.hit("public", "ip:abuser", service="t")
        for i in range(50):  # fewer distinct newcomers than the bound
            await limiter.hit("public", f"ip:{i}", service="t")
        with pytest.raises(Exception, match="public limit"):
            await limiter.hit("public", "ip:abuser", service="t")


class TestStorageOutage:
    async def test_an_unreachable_limiter_store_admits_and_is_counted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(
            redis_url="redis://127.0.0.1:1/0",
            redis_socket_timeout_seconds=0.2,
            redis_reconnect_backoff_seconds=0.1,
            rate_limits=limits(public="1/minute"),
        )
        app = limited_app(settings)
        async with running(app) as client:
            statuses = [(await client.post("/signup")).status_code for _ in range(3)]
            metrics = scrape(app.state.platform)
        assert statuses == [200, 200, 200]
        assert metric_value(metrics, "xynergy_rate_limit_storage_errors_total", service="svc") == 3

    async def test_a_refusal_whose_window_cannot_be_read_admits_and_is_counted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # Redis counted the hit past the limit, then failed reading the window for
        # Retry-After (it went away in between; here GET is denied to the client):
        # the outage policy still admits, never a 5xx. Our own redis-server.
        import redis as redis_sync

        from tests.platform.outage_servers import OwnRedis
        from xynergy.platform.runtime import create_redis

        server = OwnRedis()
        server.start()
        try:
            settings = make_settings(redis_url=server.url, rate_limits=limits(public="1/minute"))
            redis = create_redis(settings)
            assert redis is not None
            metrics = PlatformMetrics()
            limiter = RateLimiter(settings, redis, metrics)
            await limiter.hit("public", "ip:a", service="t")
            with pytest.raises(Exception, match="public limit"):
                await limiter.hit("public", "ip:a", service="t")  # refused, window readable
            admin = redis_sync.Redis(port=server.port)
            admin.acl_setuser("default", enabled=True, nopass=True, commands=["-get"])
            admin.close()
            await limiter.hit("public", "ip:a", service="t")  # refused, window unreadable
            await redis.aclose()
        finally:
            server.kill()
        text = metrics.render().decode()
        assert metric_value(text, "xynergy_rate_limit_storage_errors_total", service="t") == 1
        assert metric_value(text, "xynergy_rate_limit_rejections_total", service="t") == 1


class TestRedisPoolBursts:
    async def test_a_burst_beyond_the_pool_waits_for_connections_instead_of_failing(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        from xynergy.platform.runtime import Platform

        settings = make_settings(
            redis_url=redis_url, redis_key_prefix=redis_prefix, redis_max_connections=2
        )
        platform = await Platform.open(settings)
        try:
            await asyncio.gather(
                *(platform.rate_limiter.hit("reads", f"key:{i}", service="t") for i in range(200))
            )
            text = platform.metrics.render().decode()
        finally:
            await platform.close()
        assert metric_value(text, "xynergy_rate_limit_storage_errors_total", service="t") == 0
