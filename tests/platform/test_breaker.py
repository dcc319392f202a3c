"""Circuit breakers on inter-service calls: fail fast, count only upstream faults, recover."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.helpers import auth, issue_key, metric_value, running, scrape
from tests.platform.test_services_client import reserved_port
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.breaker import Breakers, UpstreamFailure
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen, NotFound
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.routing import api_router
from xynergy.platform.runtime import create_redis
from xynergy.server import build_all_in_one

ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]
THRESHOLD = 3
RESET_SECONDS = 0.5


def callee(settings: Settings) -> FastAPI:
    router = api_router()

    @router.get("/broken")
    async def broken(request: Request, _auth: ReadAuth) -> dict[str, str]:
        request.app.state.calls += 1
        if request.app.state.healthy:
            return {"ok": "yes"}
        raise RuntimeError("the callee is unwell")

    @router.get("/missing")
    async def missing(request: Request, _auth: ReadAuth) -> dict[str, str]:
        request.app.state.calls += 1
        raise NotFound("nothing here")

    app = create_service_app(slug="callee", title="callee", settings=settings, routers=[router])
    app.state.calls = 0
    app.state.healthy = False
    return app


def caller(settings: Settings) -> FastAPI:
    router: APIRouter = api_router()

    @router.get("/relay/{target}")
    async def relay(target: str, request: Request, auth_: ReadAuth) -> dict[str, Any]:
        response = await request.app.state.platform.services.request(
            "callee", "GET", "/" + target, caller=auth_, scopes={"content:read"}
        )
        return {"status": response.status}

    return create_service_app(slug="caller", title="caller", settings=settings, routers=[router])


def breaker_settings(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    return make_settings(
        breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=RESET_SECONDS, **extra
    )


class TestInProcessBreaker:
    async def test_server_errors_open_it_and_it_recovers_after_the_cool_down(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        apps: dict[str, FastAPI] = {}

        def make_callee(settings: Settings) -> FastAPI:
            apps["callee"] = callee(settings)
            return apps["callee"]

        root: Starlette = build_all_in_one(
            breaker_settings(make_settings), services={"callee": make_callee, "caller": caller}
        )
        async with running(root) as client:
            _, key = await issue_key(root.state.platform, scopes=["content:read"])
            relayed = [
                (await client.get("/caller/relay/broken", headers=auth(key.secret))).json()
                for _ in range(THRESHOLD)
            ]
            assert relayed == [{"status": 500}] * THRESHOLD
            calls_when_opened = apps["callee"].state.calls

            fast_fail = await client.get("/caller/relay/broken", headers=auth(key.secret))
            assert fast_fail.status_code == 503
            assert fast_fail.json()["error"] == "circuit_open"
            assert apps["callee"].state.calls == calls_when_opened  # not called at all
            metrics = scrape(root.state.platform)
            assert (
                metric_value(metrics, "xynergy_circuit_breaker_state", circuit="service:callee")
                == 1
            )

            apps["callee"].state.healthy = True
            await asyncio.sleep(RESET_SECONDS + 0.1)
            probe = await client.get("/caller/relay/broken", headers=auth(key.secret))
            assert probe.json() == {"status": 200}
            metrics = scrape(root.state.platform)
            assert (
                metric_value(metrics, "xynergy_circuit_breaker_state", circuit="service:callee")
                == 0
            )

    async def test_client_errors_do_not_count(self, make_settings: Callable[..., Settings]) -> None:
        root = build_all_in_one(
            breaker_settings(make_settings), services={"callee": callee, "caller": caller}
        )
        async with running(root) as client:
            _, key = await issue_key(root.state.platform, scopes=["content:read"])
            statuses = [
                (await client.get("/caller/relay/missing", headers=auth(key.secret))).json()
                for _ in range(THRESHOLD * 2)
            ]
        assert statuses == [{"status": 404}] * (THRESHOLD * 2)


class TestNetworkBreaker:
    async def test_an_unreachable_service_trips_it(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        with reserved_port() as sock:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            app = caller(breaker_settings(make_settings, service_urls={"callee": url}))
            async with running(app) as client:
                _, key = await issue_key(app.state.platform, scopes=["content:read"])
                errors = [
                    (await client.get("/relay/broken", headers=auth(key.secret))).json()["error"]
                    for _ in range(THRESHOLD + 2)
                ]
        assert errors == ["upstream_unavailable"] * THRESHOLD + ["circuit_open"] * 2


DEAD = "tenant-a:http://[10.9.8.7]:8080"
ALIVE = "tenant-b:http://[10.9.8.7]:8081"


def destination_breakers(
    make_settings: Callable[..., Settings], redis: Redis | None = None, **extra: Any
) -> tuple[Breakers, PlatformMetrics]:
    values: dict[str, Any] = {
        "breaker_failure_threshold": THRESHOLD,
        "breaker_reset_seconds": RESET_SECONDS,
        **extra,
    }
    metrics = PlatformMetrics()
    return Breakers(make_settings(**values), metrics, redis), metrics


async def fail_until_open(breakers: Breakers, destination: str) -> None:
    for _ in range(THRESHOLD):
        with contextlib.suppress(UpstreamFailure):
            async with breakers.guard("webhook", destination):
                raise UpstreamFailure("a 503")


class TestDestinationBreakers:
    async def test_each_destination_has_its_own_breaker(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        breakers, _ = destination_breakers(make_settings)
        await fail_until_open(breakers, DEAD)

        with pytest.raises(CircuitOpen):
            async with breakers.guard("webhook", DEAD):
                pytest.fail("an open breaker ran the call")
        ran = False
        async with breakers.guard("webhook", ALIVE):
            ran = True
        assert ran
        assert (await breakers.state("webhook", DEAD), await breakers.state("webhook", ALIVE)) == (
            "opened",
            "closed",
        )
        assert await breakers.state("webhook") == "closed"  # the upstream's own, untouched

    async def test_the_map_stays_within_its_bound(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        breakers, _ = destination_breakers(make_settings, breaker_max_destinations=8)
        for port in range(100):
            async with breakers.guard("webhook", f"tenant:http://[10.0.0.1]:{port}"):
                pass
            assert breakers.destinations_held <= 8
        assert breakers.destinations_held == 8

    async def test_idle_breakers_expire(self, make_settings: Callable[..., Settings]) -> None:
        breakers, _ = destination_breakers(
            make_settings, breaker_reset_seconds=0.05, breaker_idle_seconds=0.2
        )
        await fail_until_open(breakers, DEAD)
        assert breakers.destinations_held == 1

        await asyncio.sleep(0.4)
        assert breakers.destinations_held == 0
        assert await breakers.state("webhook", DEAD) == "closed"  # a fresh one

    async def test_destinations_never_become_metric_labels(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        breakers, metrics = destination_breakers(make_settings)
        await fail_until_open(breakers, DEAD)
        async with breakers.guard("webhook", ALIVE):
            pass

        text = metrics.render().decode()
        assert "10.9.8.7" not in text
        assert "tenant-" not in text
        transitions = "xynergy_circuit_breaker_destination_transitions_total"
        assert metric_value(text, transitions, circuit="webhook", state="opened") == 1

    async def test_an_upstream_name_cannot_pass_for_a_destination(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        breakers, _ = destination_breakers(make_settings)
        with pytest.raises(ValueError, match="never contains"):
            async with breakers.guard("webhook|tenant", DEAD):
                pass

    async def test_with_redis_their_keys_expire_after_the_idle_time(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = breaker_settings(
            make_settings, redis_url=redis_url, redis_key_prefix=redis_prefix
        )
        redis = create_redis(settings)
        assert redis is not None
        try:
            breakers, _ = destination_breakers(
                make_settings,
                redis,
                redis_key_prefix=redis_prefix,
                breaker_idle_seconds=120,
            )
            await fail_until_open(breakers, DEAD)
            assert await breakers.state("webhook", DEAD) == "opened"
            keys = [key async for key in redis.scan_iter(match=redis_prefix + "*")]
            assert keys
            for key in keys:
                assert 0 < await redis.ttl(key) <= 120
        finally:
            await redis.aclose()
